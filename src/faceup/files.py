"""Which files a folder walk hands to faceup: every file, but hidden ones (a
dot anywhere in the path below the folder) and OS litter. Pictures are told by
content later, never by their names here."""

from __future__ import annotations

from pathlib import Path

#: Files a directory walk passes over: OS litter.
LITTER = {"thumbs.db", "desktop.ini"}


def walk(folder: Path, recursive: bool = True, skip: Path | None = None) -> list[Path]:
    """The files under `folder`, sorted; `skip`: a folder inside it to leave out
    (an output folder inside the input)."""
    it = folder.rglob("*") if recursive else folder.glob("*")
    files = []
    for p in it:
        rel = p.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts) or p.name.lower() in LITTER or not p.is_file():
            continue
        if skip is not None and (p == skip or skip in p.parents):
            continue
        files.append(p)
    return sorted(files)
