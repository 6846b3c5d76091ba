"""What does `faceup predict` cost on photos of people now, against an earlier revision?

    .venv/bin/python benchmarks/cost_against.py REV [--repeat 7]

The photos: the throughput benchmark's small set (crowd photos and video frames
at 300-400 px, JPEG q90, 480) and its web set (the crowd photos' held-out part as
they are). Each is judged by `faceup predict --json DIR` of REV (a `git worktree`
run with this venv) and of the work tree, whole processes, start-up included,
with one worker and with every core; the runs alternate so both see the same
machine, and the medians are printed. Prints a table.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(HERE), str(REPO / "tools")]

import throughput  # noqa: E402
from same_answers import answers, worktree  # noqa: E402

from faceup import datasets  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("rev")
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--data", default=None)
    args = ap.parse_args()
    root = datasets.data_root(args.data)
    with tempfile.TemporaryDirectory() as tmp, worktree(args.rev, Path(tmp) / "old") as old:
        tmp = Path(tmp)
        sets = throughput.make_sets(root, tmp, 1, 1, 480)
        print(f"command: python benchmarks/cost_against.py {args.rev} --repeat {args.repeat}")
        print(f"| set | workers | pictures | {args.rev} s | now s | now / {args.rev} |")
        print("|---|---|---|---|---|---|")
        for name in ("small", "web"):
            files = sorted(sets[name].iterdir())
            for workers in (["--workers", "1"], []):
                times: dict[str, list[float]] = {"old": [], "now": []}
                for _ in range(args.repeat):
                    for key, src in (("old", old), ("now", REPO)):
                        lines, sec = answers(src, ["predict", *workers], files)
                        if len(lines) != len(files):
                            sys.exit(f"{key}: {len(lines)} answers for {len(files)} pictures")
                        times[key].append(sec)
                a, b = statistics.median(times["old"]), statistics.median(times["now"])
                print(f"| {name} | {workers[1] if workers else 'every core'} | {len(files)} | {a:.2f} | "
                      f"{b:.2f} | {b / a:.2f} |")


if __name__ == "__main__":
    main()
