"""Local-mode object store: a directory; writes go to a temporary file and are renamed into place."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from .store import ObjectNotFound, ObjectTooLarge


class LocalStore:
    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def __repr__(self) -> str:
        return f"LocalStore({str(self.root)!r})"

    def uri(self, key: str) -> str:
        return (self.root / key).as_uri()

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()) or key.endswith("/"):
            raise ValueError(f"invalid object key {key!r}")
        return path

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, path)

    def put_file(self, key: str, path: str) -> None:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        with os.fdopen(fd, "wb") as out, open(path, "rb") as source:
            shutil.copyfileobj(source, out, 1 << 20)
        os.replace(tmp, target)

    def get_file(self, key: str, path: str) -> None:
        source = self._path(key)
        if not source.is_file():
            raise ObjectNotFound(key)
        shutil.copyfile(source, path)

    def create(self, key: str, data: bytes) -> bool:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        try:
            os.link(tmp, path)  # atomic, and refuses an existing name
        except FileExistsError:
            return False
        finally:
            os.unlink(tmp)
        return True

    def get(self, key: str, limit: int | None = None) -> bytes:
        try:
            with open(self._path(key), "rb") as file:
                data = file.read() if limit is None else file.read(limit + 1)
        except FileNotFoundError as error:
            raise ObjectNotFound(key) from error
        if limit is not None and len(data) > limit:
            raise ObjectTooLarge(f"{key} has more than {limit} bytes")
        return data

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list(self, prefix: str) -> list[str]:
        base = self.root / prefix
        start = base if base.is_dir() else base.parent
        if not start.exists():
            return []
        keys = (p.relative_to(self.root).as_posix() for p in start.rglob("*") if p.is_file())
        return sorted(k for k in keys if k.startswith(prefix) and not Path(k).name.startswith(".tmp-"))

    def folders(self, prefix: str) -> list[str]:
        base = self.root / prefix
        if not base.is_dir():
            return []
        return sorted(f"{prefix}{p.name}/" for p in base.iterdir() if p.is_dir())

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)
