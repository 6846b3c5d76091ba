"""Ends the local Ray that a `faceup batch` run started, when that run is killed.

A killed run (SIGKILL, the OOM killer) gets no chance to call ray.shutdown(),
and Ray's agents then live on for a minute or more. This small process watches
the run: while it lives, it notes every process below it (Ray's head, raylet,
agents and workers); when it is gone, it kills those that are still there.
Linux only (/proc); elsewhere it exits at once. Started by faceup.batch:

    python -m faceup.batch.watchdog DRIVER_PID
"""

from __future__ import annotations

import os
import signal
import sys
import time


def _table() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, start time) of every process."""
    out = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                fields = open(f"/proc/{name}/stat").read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            out[int(name)] = (int(fields[1]), fields[19])
    return out


def _below(pid: int, table: dict[int, tuple[int, str]]) -> dict[int, str]:
    kids: dict[int, list[int]] = {}
    for p, (parent, _) in table.items():
        kids.setdefault(parent, []).append(p)
    found, todo = {}, [pid]
    while todo:
        for child in kids.get(todo.pop(), []):
            if child not in found:
                found[child] = table[child][1]
                todo.append(child)
    return found


def watch(driver: int, every: float = 0.5) -> int:
    me = os.getpid()
    seen: dict[int, str] = {}
    while True:
        table = _table()
        if driver not in table:
            break
        seen.update(_below(driver, table))
        time.sleep(every)
    table = _table()
    for pid in list(seen):  # and what those started meanwhile
        if pid in table and table[pid][1] == seen[pid]:
            seen.update(_below(pid, table))
    killed = 0
    for pid, started in seen.items():
        if pid != me and pid in table and table[pid][1] == started:  # the same process, not a reused pid
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except OSError:
                pass
    return killed


if __name__ == "__main__":
    if os.path.isdir("/proc") and len(sys.argv) == 2:
        watch(int(sys.argv[1]))
