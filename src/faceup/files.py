"""Files on disk: which files a folder walk hands to faceup, and how faceup
writes one (atomically, with the permissions a user expects).

Pictures are told by content later, never by their names here."""

from __future__ import annotations

import os
import re
import stat
import tempfile
import threading
from pathlib import Path

#: Files a directory walk passes over: OS litter.
LITTER = {"thumbs.db", "desktop.ini"}

#: The tags faceup puts in the names of what it writes beside an input
#: (NAME.upright.EXT from `fix`, NAME.background.EXT from `background`), and the
#: explanation's NAME.why.png.
OUTPUT_TAGS = ("upright", "background")
_OWN_OUTPUT = re.compile(r"\.(?:upright|background)\.[A-Za-z0-9]+$|\.why\.png$", re.IGNORECASE)


def is_own_output(path: Path) -> bool:
    """Whether the file's name is one faceup gives what it writes beside an input."""
    return bool(_OWN_OUTPUT.search(path.name))


def walk(folder: Path, recursive: bool = True, skip: Path | list[Path] | None = None,
         outputs: bool = False) -> list[Path]:
    """The files under `folder`, sorted; hidden files (a dot anywhere in the path
    below the folder), OS litter and (unless `outputs`) faceup's own outputs
    written beside their inputs (is_own_output) left out. `skip`: paths inside it
    to leave out, each a file or a whole folder (an output folder inside the
    input, a results table)."""
    skips = [] if skip is None else [skip] if isinstance(skip, Path) else list(skip)
    skips = [s.resolve() for s in skips]
    it = folder.rglob("*") if recursive else folder.glob("*")
    files = []
    for p in it:
        rel = p.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts) or p.name.lower() in LITTER or not p.is_file():
            continue
        if not outputs and is_own_output(p):
            continue
        if skips:
            real = p.resolve()
            if any(real == s or s in real.parents for s in skips):
                continue
        files.append(p)
    return sorted(files)


_UMASK: int | None = None
_UMASK_LOCK = threading.Lock()


def umask() -> int:
    """The process's umask, read without changing it where Linux tells it
    (/proc/self/status), else by setting it and back once (under a lock)."""
    global _UMASK
    with _UMASK_LOCK:
        if _UMASK is None:
            try:
                status = Path("/proc/self/status").read_text()
                _UMASK = int(re.search(r"^Umask:\s*([0-7]+)", status, re.M).group(1), 8)  # type: ignore[union-attr]
            except (OSError, AttributeError, ValueError):
                _UMASK = os.umask(0o022)
                os.umask(_UMASK)
        return _UMASK


def write_atomic(path: str | os.PathLike, data: bytes, like: str | os.PathLike | None = None) -> None:
    """Write `data` to `path` through a temporary file in the same folder, fsync
    and a rename, so a reader never sees half a file and a crash leaves the old one.

    A new file gets the permissions the umask allows (0644 under the usual 022).
    With `like` (a file being replaced in place) the new file takes that file's
    permission bits, owner and group (where the process may set them) and its
    access and modification times, as exiftran -ip does. The rename makes a new
    file: other hard links to the old one keep the old content."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    old = os.stat(like) if like is not None else None
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            if old is None:
                os.fchmod(f.fileno(), 0o666 & ~umask())
            else:
                if (old.st_uid, old.st_gid) != (os.getuid(), os.getgid()):
                    try:
                        os.fchown(f.fileno(), old.st_uid, old.st_gid)
                    except PermissionError:
                        pass  # only root gives a file away; the group may still differ
                os.fchmod(f.fileno(), stat.S_IMODE(old.st_mode))
            os.fsync(f.fileno())
        if old is not None:
            os.utime(tmp, ns=(old.st_atime_ns, old.st_mtime_ns))
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
