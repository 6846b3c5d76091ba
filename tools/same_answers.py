"""Do two revisions of faceup give the same answers? `predict --json` and
`analyze --json` of each revision on the same turned held-out pictures, and the
pictures `background --color white` writes for some of them, compared byte for byte (a refactor must not change an answer; a change that means to is
explained by the lines this prints).

    python tools/same_answers.py REV            # REV against the work tree
    python tools/same_answers.py REV --per 100  # pictures per held-out source

The pictures: a seeded sample of LFW, the crowd photos' test part and the scenes'
test part (never trained on), each turned 0/90/180/270 and saved as JPEG q90, as
`faceup evaluate` makes them. REV runs from a `git worktree` with this venv.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def make_cases(folder: Path, per: int) -> list[Path]:
    from PIL import Image

    from faceup import datasets, evaluate

    root = datasets.data_root(None)
    picks = {"faces": datasets.lfw(root), "crowds": datasets.crowds(root, "test"),
             "scenes": datasets.scenes(root, "test")}
    out = []
    for name, paths in picks.items():
        for p in sorted(random.Random(0).sample(paths, min(per, len(paths)))):
            img = Image.open(p).convert("RGB")
            for r in (0, 90, 180, 270):
                dst = folder / name / f"{p.stem}@{r}.jpg"
                dst.parent.mkdir(parents=True, exist_ok=True)
                dst.write_bytes(evaluate.turned_jpeg(img, r))
                out.append(dst)
    return out


@contextlib.contextmanager
def worktree(rev: str, where: Path) -> Iterator[Path]:
    """`rev` checked out at `where` (a `git worktree`, removed afterwards)."""
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(where), rev], check=True,
                   capture_output=True)
    try:
        yield where
    finally:
        subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(where)], check=False)


def answers(src: Path, command: list[str], cases: list[Path]) -> tuple[list[str], float]:
    """The JSON lines, and the whole process's seconds."""
    import time

    env = {**os.environ, "PYTHONPATH": str(src / "src")}
    code = "import sys; from faceup.cli import main; sys.argv[0] = 'faceup'; main()"
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", code, *command, "--json", *map(str, cases)], env=env,
                       capture_output=True, text=True)
    return r.stdout.splitlines(), time.perf_counter() - t


def backgrounds(src: Path, cases: list[Path], out: Path) -> dict[str, str]:
    """The sha256 of each picture `background --color white` writes, by input name."""
    import hashlib

    env = {**os.environ, "PYTHONPATH": str(src / "src")}
    code = "import sys; from faceup.cli import main; sys.argv[0] = 'faceup'; main()"
    found = {}
    out.mkdir(parents=True, exist_ok=True)
    for case in cases:
        dst = out / f"{case.parent.name}-{case.stem}.png"
        subprocess.run([sys.executable, "-c", code, "background", str(case), "-o", str(dst), "--color", "white"],
                       env=env, capture_output=True)
        found[dst.name] = hashlib.sha256(dst.read_bytes()).hexdigest() if dst.exists() else "missing"
    return found


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("rev")
    ap.add_argument("--per", type=int, default=60, help="pictures per held-out source (each turned 4 ways)")
    ap.add_argument("--backgrounds", type=int, default=24, help="of those, pictures given a new background")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp, worktree(args.rev, Path(tmp) / "old") as old:
        tmp = Path(tmp)
        cases = make_cases(tmp / "cases", args.per)
        failed = False
        for command in (["predict"], ["analyze"]):
            (a, ta), (b, tb) = answers(old, command, cases), answers(REPO, command, cases)
            same = sum(x == y for x, y in zip(a, b))
            print(f"{' '.join(command)} --json: {len(cases)} pictures, {len(a)} and {len(b)} lines, "
                  f"{same} byte-identical; {ta:.1f} s and {tb:.1f} s (whole process)")
            for x, y in zip(a, b):
                if x != y:
                    failed = True
                    print(f"  {args.rev}: {x}\n  now: {y}")
            failed |= len(a) != len(b) or len(a) != len(cases)
        some = cases[::max(1, len(cases) // args.backgrounds)][:args.backgrounds]
        a, b = backgrounds(old, some, tmp / "bg-old"), backgrounds(REPO, some, tmp / "bg-new")
        differ = [k for k in a if a[k] != b.get(k) or a[k] == "missing"]
        print(f"background --color white: {len(some)} pictures, {len(some) - len(differ)} byte-identical")
        failed |= bool(differ)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
