"""Where a batch run reads and writes: a local folder or an object store that
speaks S3 (AWS S3, MinIO, Ceph, R2, GCS's interoperability mode).

Every path the batch job handles is a string: a local path, or `s3://bucket/key`.
`of(path)` gives the store that holds it, so an input on a bucket and an output
in a folder (or the reverse) mix freely. The local store is the file system
calls the batch job has always made (atomic writes, flock); the S3 store is
pyarrow's S3 file system, the one Ray Data reads with, so the ray extra brings no
new dependency (s3fs would add aiobotocore and its pinned botocore).

On a bucket an object is whole or absent (a PUT is atomic), so a write needs no
temporary name; a "rename" is a copy and a delete, which is why the batch job
journals a row before it moves a staged object into place, as on a disk.

Endpoint, region and credentials come from the standard AWS variables and files
only (AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL, AWS_REGION or AWS_DEFAULT_REGION,
AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, AWS_PROFILE and
~/.aws/credentials), read by the AWS SDK inside pyarrow. pyarrow does not read the
endpoint variables itself (apache/arrow#49643), so they are read here and given
to it as `endpoint_override`. Nothing secret is kept in a path, a row or a
message.
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import json
import os
import posixpath
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

from faceup.errors import BadOptionError, BatchError, missing_extra, shown
from faceup.files import LITTER, is_own_output, write_atomic

SCHEME = "s3://"

#: An S3 lock object not refreshed for this long is taken as left by a run that
#: was killed (the run holding it rewrites it every LOCK_BEAT seconds).
LOCK_STALE = 60.0
LOCK_BEAT = 10.0


def is_remote(path: str | os.PathLike) -> bool:
    return str(path).startswith(SCHEME)


def join(base: str, *parts: str) -> str:
    """os.path.join for local paths, '/'-joined keys for s3:// ones."""
    return posixpath.join(base, *parts) if is_remote(base) else os.path.join(base, *parts)


def dirname(path: str) -> str:
    return posixpath.dirname(path) if is_remote(path) else os.path.dirname(path)


def basename(path: str) -> str:
    return posixpath.basename(path) if is_remote(path) else os.path.basename(path)


def absolute(path: str | os.PathLike) -> str:
    """A local path made absolute; an s3:// URI normalised (no `.`, `..` or double
    slashes in its key, no trailing slash)."""
    path = str(path)
    if not is_remote(path):
        return os.path.abspath(path)
    bucket, key = _split(path)
    key = posixpath.normpath("/" + key).lstrip("/") if key else ""
    return SCHEME + bucket + ("/" + key if key and key != "." else "")


def relative(path: str, base: str) -> str:
    """`path` relative to the folder `base` (both local, or both s3://)."""
    if is_remote(path) != is_remote(base):
        raise BadOptionError(f"{path} and {base} are not in the same store")
    if is_remote(path):
        return posixpath.relpath("/" + path[len(SCHEME):], "/" + base[len(SCHEME):])
    return os.path.relpath(path, base)


def _split(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise BadOptionError(f"an object store path is s3://BUCKET/PREFIX, not {uri!r}")
    if parsed.username or parsed.password or parsed.query:
        raise BadOptionError("give credentials and options in the standard AWS variables or files "
                             "(AWS_ACCESS_KEY_ID, AWS_PROFILE, AWS_ENDPOINT_URL, ...), not in the path")
    return parsed.netloc, uri[len(SCHEME) + len(parsed.netloc):].lstrip("/")


class LocalStore:
    """A local folder: the file system calls the batch job has always made."""

    remote = False

    def stat(self, path: str) -> tuple[int, int] | None:
        """(size, modification time in ns) of a file, None when there is none."""
        try:
            st = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            return None
        return st.st_size, st.st_mtime_ns

    def read(self, path: str) -> bytes:
        return Path(path).read_bytes()

    def write(self, path: str, data: bytes, like: str | None = None) -> None:
        write_atomic(path, data, like=like)

    def replace(self, src: str, dst: str) -> None:
        os.replace(src, dst)

    def unlink(self, path: str) -> None:
        Path(path).unlink(missing_ok=True)

    def is_dir(self, path: str) -> bool:
        return os.path.isdir(path)

    def is_file(self, path: str) -> bool:
        return os.path.isfile(path)

    def exists(self, path: str) -> bool:
        return os.path.exists(path)

    def realpath(self, path: str) -> str:
        return os.path.realpath(path)

    def files(self, folder: str, pattern: str = "*") -> list[str]:
        """Every file under `folder` (hidden ones too) whose name matches `pattern`."""
        return sorted(str(p) for p in Path(folder).rglob(pattern) if p.is_file()) if os.path.isdir(folder) else []

    def walk(self, folder: str, skip: list[str], outputs: bool = False) -> list[str]:
        from faceup.files import walk

        return [os.path.abspath(p) for p in walk(Path(folder), skip=[Path(s) for s in skip], outputs=outputs)]

    def remove_empty_dir(self, folder: str) -> None:
        with contextlib.suppress(OSError):
            os.rmdir(folder)

    @contextlib.contextmanager
    def lock(self, path: str, what: str) -> Iterator[None]:
        from faceup.batch import lock

        with lock.held((Path(path), what)):
            yield


class S3Store:
    """A bucket, through pyarrow's S3 file system (made from the AWS variables)."""

    remote = True

    def __init__(self) -> None:
        try:
            from pyarrow import fs
        except ImportError as exc:
            raise missing_extra("faceup batch on s3://", "ray", exc) from None
        self._fs_mod = fs
        kwargs: dict = {}
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        if endpoint:
            kwargs["endpoint_override"] = endpoint
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        if region:
            kwargs["region"] = region
        retry = fs.AwsStandardS3RetryStrategy(max_attempts=3)
        self.fs = fs.S3FileSystem(connect_timeout=5, request_timeout=30, retry_strategy=retry, **kwargs)
        self.endpoint = endpoint or "AWS S3"

    @staticmethod
    def key(path: str) -> str:
        bucket, key = _split(path)
        return f"{bucket}/{key}" if key else bucket

    def _unreachable(self, exc: Exception, path: str) -> BatchError:
        return BatchError(f"the object store at {self.endpoint} cannot be reached for {path} ({shown(exc, 160)}); "
                          "check AWS_ENDPOINT_URL, the network and the credentials, then run the same command "
                          "again: what was done and journaled is kept, nothing is done twice")

    def _call(self, path: str, fn, *args):
        try:
            return fn(*args)
        except FileNotFoundError:
            raise
        except OSError as exc:
            text = str(exc)
            if any(s in text for s in ("NETWORK_CONNECTION", "Could not resolve", "Couldn't connect",
                                       "Connection refused", "curlCode")):
                raise self._unreachable(exc, path) from None
            raise

    def _info(self, path: str):
        return self._call(path, self.fs.get_file_info, self.key(path))

    def stat(self, path: str) -> tuple[int, int] | None:
        info = self._info(path)
        if info.type != self._fs_mod.FileType.File:
            return None
        return info.size, info.mtime_ns or 0

    def read(self, path: str) -> bytes:
        def get() -> bytes:
            with self.fs.open_input_stream(self.key(path)) as f:
                return f.read()
        return self._call(path, get)

    def write(self, path: str, data: bytes, like: str | None = None) -> None:
        def put() -> None:
            with self.fs.open_output_stream(self.key(path)) as f:  # one PUT: whole or absent
                f.write(data)
        self._call(path, put)

    def replace(self, src: str, dst: str) -> None:
        self._call(dst, self.fs.move, self.key(src), self.key(dst))

    def unlink(self, path: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._call(path, self.fs.delete_file, self.key(path))

    def is_dir(self, path: str) -> bool:
        return self._info(path).type == self._fs_mod.FileType.Directory

    def is_file(self, path: str) -> bool:
        return self._info(path).type == self._fs_mod.FileType.File

    def exists(self, path: str) -> bool:
        return self._info(path).type != self._fs_mod.FileType.NotFound

    def realpath(self, path: str) -> str:
        return absolute(path)  # no links on a bucket

    def _listing(self, folder: str) -> list:
        selector = self._fs_mod.FileSelector(self.key(folder), recursive=True, allow_not_found=True)
        return [i for i in self._call(folder, self.fs.get_file_info, selector)
                if i.type == self._fs_mod.FileType.File]

    def files(self, folder: str, pattern: str = "*") -> list[str]:
        return sorted(SCHEME + i.path for i in self._listing(folder) if fnmatch.fnmatch(i.base_name, pattern))

    def walk(self, folder: str, skip: list[str], outputs: bool = False) -> list[str]:
        """As files.walk: hidden keys, OS litter and (unless `outputs`) faceup's own
        outputs left out; keys under `skip` too."""
        root = self.key(folder).rstrip("/") + "/"
        skips = [self.key(s).rstrip("/") for s in skip if is_remote(s)]
        out = []
        for info in self._listing(folder):
            rel = info.path[len(root):] if info.path.startswith(root) else info.base_name
            if any(part.startswith(".") for part in rel.split("/")) or info.base_name.lower() in LITTER:
                continue
            if not outputs and is_own_output(Path(info.base_name)):
                continue
            if any(info.path == s or info.path.startswith(s + "/") for s in skips):
                continue
            out.append(SCHEME + info.path)
        return sorted(out)

    def remove_empty_dir(self, folder: str) -> None:
        pass  # a prefix with no objects is no folder

    @contextlib.contextmanager
    def lock(self, path: str, what: str) -> Iterator[None]:
        """A lock object, rewritten every LOCK_BEAT s while the run goes. A bucket
        has no flock: the object names its holder; one on this machine whose
        process is gone, or one not refreshed for LOCK_STALE s, was left by a run
        that was killed and is taken over. Two runs started within the same
        moment could both take it (S3 has no compare-and-swap here): the
        journal keeps even that from writing an output twice without a row."""
        token = uuid.uuid4().hex
        held = self._take(path, what, token)
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(LOCK_BEAT):
                with contextlib.suppress(Exception):
                    self.write(path, json.dumps(held | {"beat": time.time()}).encode())

        thread = threading.Thread(target=beat, daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()
            with contextlib.suppress(Exception):
                if json.loads(self.read(path)).get("token") == token:
                    self.unlink(path)

    def _take(self, path: str, what: str, token: str) -> dict:
        try:
            holder = json.loads(self.read(path))
        except FileNotFoundError:
            holder = None
        except ValueError:
            holder = {}
        if holder is not None and not _stale(holder):
            who = (f"pid {holder.get('pid')} on {holder.get('host')}, started {holder.get('started')}"
                   if holder else "another process")
            raise BatchError(f"another faceup batch run is working on {what} ({who}); wait for it to end, "
                             "or stop it and run this command again to resume")
        mine = {"token": token, "pid": os.getpid(), "host": socket.gethostname(),
                "started": time.strftime("%Y-%m-%d %H:%M:%S"), "beat": time.time()}
        self.write(path, json.dumps(mine).encode())
        return mine


def _stale(holder: dict) -> bool:
    if time.time() - float(holder.get("beat") or 0) > LOCK_STALE:
        return True
    if holder.get("host") == socket.gethostname() and isinstance(holder.get("pid"), int):
        try:
            os.kill(holder["pid"], 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
    return False


_LOCAL = LocalStore()
_S3: S3Store | None = None
_S3_LOCK = threading.Lock()


def of(path: str | os.PathLike) -> LocalStore | S3Store:
    """The store that holds `path` (one S3 store per process, made when first needed)."""
    global _S3
    if not is_remote(path):
        return _LOCAL
    with _S3_LOCK:
        if _S3 is None:
            _S3 = S3Store()
        return _S3


def sha256(path: str) -> str | None:
    """The sha256 of a file or object, None when there is none."""
    try:
        return hashlib.sha256(of(path).read(path)).hexdigest()
    except FileNotFoundError:
        return None
