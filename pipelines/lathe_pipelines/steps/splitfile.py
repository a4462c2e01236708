"""The prepare step's split file: an uncompressed npz (what ``np.savez`` writes) read memory-mapped.

``np.load`` reads an npz member whole into memory; a training set may not fit. The members of
an uncompressed zip lie contiguous in the file, so ``load`` maps each array where it lies: the
steps read the rows they touch (a minibatch, a chunk) and the kernel pages the rest in and
out. ``write`` takes arrays or ``.npy`` files (the prepare step fills those row by row) and
streams them in, so neither side holds a whole split.
"""

from __future__ import annotations

import shutil
import struct
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

LOCAL_HEADER = struct.Struct("<4s5H3L2H")  # a zip local file header, before the name and extra field
HEADERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}


class Splits:
    """An npz's arrays by name (``files``, ``[name]``, as ``np.load`` gives them), the large ones memory-mapped."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._arrays: dict[str, np.ndarray] = {}
        with open(self.path, "rb") as raw, zipfile.ZipFile(raw) as archive:
            for info in archive.infolist():
                name = info.filename.removesuffix(".npy")
                if info.compress_type != zipfile.ZIP_STORED:
                    raise ValueError(f"{self.path}: {info.filename} is compressed; a split file is written stored")
                self._arrays[name] = self._member(raw, info)

    def _member(self, raw: Any, info: zipfile.ZipInfo) -> np.ndarray:
        raw.seek(info.header_offset)
        fields = LOCAL_HEADER.unpack(raw.read(LOCAL_HEADER.size))
        raw.seek(info.header_offset + LOCAL_HEADER.size + fields[-2] + fields[-1])  # past the name and extra field
        version = np.lib.format.read_magic(raw)
        if version not in HEADERS:
            raise ValueError(f"{self.path}: {info.filename} is .npy format {version}; a split file is 1.0 or 2.0")
        shape, fortran, dtype = HEADERS[version](raw)
        if dtype.hasobject or not shape or int(np.prod(shape)) == 0:  # small: read as np.load would
            raw.seek(info.header_offset + LOCAL_HEADER.size + fields[-2] + fields[-1])
            return np.lib.format.read_array(raw, allow_pickle=False)
        order = "F" if fortran else "C"
        return np.memmap(self.path, dtype=dtype, mode="r", offset=raw.tell(), shape=shape, order=order)

    @property
    def files(self) -> list[str]:
        return list(self._arrays)

    def __getitem__(self, name: str) -> np.ndarray:
        return self._arrays[name]

    def __contains__(self, name: str) -> bool:
        return name in self._arrays


def load(path: str | Path) -> Splits:
    return Splits(path)


def write(path: str | Path, arrays: dict[str, np.ndarray | Path]) -> None:
    """An npz ``np.load`` and ``load`` read: each value an array, or a ``.npy`` file copied in."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name, value in arrays.items():
            with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                if isinstance(value, Path):
                    with value.open("rb") as source:
                        shutil.copyfileobj(source, member, 1 << 20)
                else:
                    np.lib.format.write_array(member, np.asanyarray(value), allow_pickle=False)
