"""Read a Dataset source (S3 object or prefix, http(s) URL, local path) into a DataFrame.

A prefix or directory of many files is one dataset: its files, sorted by key, concatenated.
What an http(s) or local source may reach is decided in ``fetch``.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from lathe_core.store import ObjectNotFound, StoreAccessDenied, StoreError, StoreUnavailable

from .errors import EmptyData, MalformedData, SourceAccessDenied, SourceNotFound, SourceUnavailable
from .fetch import fetch, local_allowed


@dataclass(frozen=True)
class S3Access:
    """Where and as whom to read s3:// sources."""

    endpoint: str
    access_key: str
    secret_key: str
    secure: bool = False


def parse(data: bytes, fmt: str, where: str) -> pd.DataFrame:
    """One file's bytes as a DataFrame; bad bytes become MalformedData naming the file."""
    if not data.strip():
        raise EmptyData(f"{where} is empty")
    try:
        if fmt == "parquet":
            return pq.read_table(io.BytesIO(data)).to_pandas()
        return pd.read_csv(io.BytesIO(data))
    except (pd.errors.ParserError, pd.errors.EmptyDataError, pa.ArrowInvalid, UnicodeDecodeError, ValueError) as error:
        raise MalformedData(f"{where} is not valid {fmt}: {str(error).splitlines()[0][:300]}") from error


def _s3_files(uri: str, fmt: str, access: S3Access, workdir: Path | None = None) -> list[tuple[str, bytes | Path]]:
    """The objects' bytes, or with ``workdir`` the objects downloaded there (streamed: a large source never sits in memory)."""
    from lathe_core.store_s3 import S3Store  # here: minio's import is a tenth of a second other sources need not pay

    bucket, _, key = uri.removeprefix("s3://").partition("/")
    store = S3Store(access.endpoint, access.access_key, access.secret_key, bucket, secure=access.secure)

    def get(index: int, key: str) -> bytes | Path:
        if workdir is None:
            return store.get(key)
        path = workdir / f"source-{index}.{fmt}"
        store.get_file(key, str(path))
        return path

    try:
        if key and not key.endswith("/") and store.exists(key):
            return [(uri, get(0, key))]
        prefix = key if key.endswith("/") or not key else key + "/"
        keys = [k for k in store.list(prefix) if k.endswith(f".{fmt}")]
        if not keys:
            raise SourceNotFound(f"no {fmt} object at {uri}")
        return [(f"s3://{bucket}/{k}", get(i, k)) for i, k in enumerate(keys)]
    except ObjectNotFound as error:
        raise SourceNotFound(f"{uri} does not exist ({error})") from error
    except StoreAccessDenied as error:
        raise SourceAccessDenied(f"access to {uri} denied: check the credentials Secret ({error})") from error
    except StoreUnavailable as error:
        raise SourceUnavailable(str(error)) from error
    except StoreError as error:
        raise SourceUnavailable(f"reading {uri}: {error}") from error


def _http_file(uri: str) -> list[tuple[str, bytes | Path]]:
    return [(uri, fetch(uri))]


def _local_files(uri: str, fmt: str) -> list[tuple[str, bytes | Path]]:
    path = Path(uri.removeprefix("file://"))
    if path.is_dir():
        files = sorted(p for p in path.rglob(f"*.{fmt}") if p.is_file())
        if not files:
            raise SourceNotFound(f"no {fmt} file under {path}")
        return [(str(p), p) for p in files]
    if not path.is_file():
        raise SourceNotFound(f"{path} does not exist")
    return [(str(path), path)]


def source_files(
    uri: str, fmt: str, s3: S3Access | None = None, *, operator_file: bool = False, workdir: Path | None = None
) -> list[tuple[str, bytes | Path]]:
    """The source's files in order, each as (where, bytes or a local path).

    Local files stay on disk; with ``workdir`` S3 objects are downloaded there; an http(s)
    source is fetched into memory (``fetch`` bounds its size).
    ``operator_file``: ``uri`` is a file the operator handed over (a ConfigMap source), not
    the Dataset's own path, so it is read in every mode."""
    if uri.startswith("s3://"):
        if s3 is None:
            raise SourceAccessDenied(f"{uri} needs S3 credentials")
        return _s3_files(uri, fmt, s3, workdir)
    if uri.startswith(("http://", "https://")):
        return _http_file(uri)
    if not operator_file:
        local_allowed(uri)
    return _local_files(uri, fmt)


def read_source(uri: str, fmt: str, s3: S3Access | None = None, *, operator_file: bool = False) -> pd.DataFrame:
    """The whole source as one DataFrame, rows in file order (the in-memory read ``stream`` reproduces)."""
    files = source_files(uri, fmt, s3, operator_file=operator_file)
    frames = [parse(data if isinstance(data, bytes) else data.read_bytes(), fmt, where) for where, data in files]
    if len(frames) > 1:
        columns = {tuple(f.columns) for f in frames}
        if len(columns) > 1:
            raise MalformedData(f"files under {uri} have different columns: {sorted(columns)[:2]}")
    frame = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    if frame.empty:
        raise EmptyData(f"{uri} has a header but no rows")
    return frame
