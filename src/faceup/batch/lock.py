"""One run at a time on an output: an advisory lock (flock) held for the whole
run. A second run on the same output (or table) refuses at once and names the
first; the lock goes with the process that holds it, however that process ends."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from faceup.errors import BatchError


def _acquire(path: Path, what: str) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                holder = json.loads(os.read(fd, 4096) or b"{}")
            except ValueError:
                holder = {}
            os.close(fd)
            who = (f"pid {holder.get('pid')} on {holder.get('host')}, started {holder.get('started')}"
                   if holder else "another process")
            raise BatchError(f"another faceup batch run is working on {what} ({who}); wait for it to end, "
                             "or stop it and run this command again to resume") from None
        try:  # the holder before us may have removed the file between our open and our lock
            if os.fstat(fd).st_ino == os.stat(path).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    os.ftruncate(fd, 0)
    os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                             "started": time.strftime("%Y-%m-%d %H:%M:%S")}).encode())
    return fd


@contextlib.contextmanager
def held(*locks: tuple[Path, str]) -> Iterator[None]:
    """Hold every (lock file, what it guards) for the block; refuse at once if
    another run holds one."""
    taken: list[tuple[Path, int]] = []
    try:
        for path, what in locks:
            taken.append((path, _acquire(path, what)))
        yield
    finally:
        for path, fd in reversed(taken):
            with contextlib.suppress(OSError):
                path.unlink()
            os.close(fd)
