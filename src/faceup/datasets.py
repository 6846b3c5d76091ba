"""Where the training and evaluation pictures live, and which part of each is held out.

The split rules live here, once, so that `faceup train` never sees what
`faceup evaluate` reports on. Held out by source where the data allows it:

- LFW (and SMILEsmileD, cut from the same photo collection) is never trained on:
  it is the held-out *face* source.
- Crowd photos whose file number ends in 0 or 5 are held out (as the data README
  asks); of the rest, numbers ending in 3 are a validation part used only to
  calibrate confidence.
- Scenes: numbers ending in 0 or 5 are held out; ending in 3, validation.
- The photos of people of the person-mask pack are held out from orientation training.
- Everyday photos (photos/objects): a hash of the file name holds out 20% (ending
  0 or 5) and puts 10% (ending 3) into validation.
- Street frames from a car (scenes/camvid), by drive: Seq05VD held out, 0006R0
  validation, 0001TP and 0016E5 training.
- UTKFace, the web gender faces and the video frames: a hash of the file name puts 10% into validation.
"""

from __future__ import annotations

import os
import re
import zlib
from pathlib import Path
from typing import Literal

Split = Literal["train", "val", "test"]

PICTURE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp", ".gif", ".heic", ".heif"}


def data_root(explicit: str | os.PathLike | None = None) -> Path:
    """The shared data folder: the argument, else $FACEUP_DATA, else ../shared/data."""
    if explicit:
        return Path(explicit)
    env = os.environ.get("FACEUP_DATA")
    if env:
        return Path(env)
    for base in (Path.cwd(), Path(__file__).resolve().parents[3]):
        candidate = base.parent / "shared" / "data"
        if candidate.is_dir():
            return candidate
    return Path("../shared/data")


def _number(path: Path) -> int | None:
    found = re.findall(r"\d+", path.stem)
    return int(found[-1]) if found else None


def _split_by_number(path: Path) -> Split:
    n = _number(path)
    if n is None:
        return _split_by_hash(path)
    if n % 5 == 0:
        return "test"
    if n % 10 == 3:
        return "val"
    return "train"


def _split_by_hash(path: Path) -> Split:
    h = zlib.crc32(path.name.encode()) % 10
    return "val" if h == 0 else "train"


def list_pictures(folder: Path, recursive: bool = True) -> list[Path]:
    it = folder.rglob("*") if recursive else folder.glob("*")
    return sorted(p for p in it if p.is_file() and p.suffix.lower() in PICTURE_SUFFIXES)


def crowds(root: Path, split: Split) -> list[Path]:
    folder = root / "photos" / "crowds"
    return [p for p in list_pictures(folder, recursive=False) if _split_by_number(p) == split]


def scenes(root: Path, split: Split) -> list[Path]:
    folder = root / "scenes" / "intel"
    return [p for p in list_pictures(folder) if _split_by_number(p) == split]


def _hashed(paths: list[Path], split: Split) -> list[Path]:
    """The pictures of a training source in `split` (10% validation by a hash of
    the name; a training source has no held-out part)."""
    return [] if split == "test" else [p for p in paths if _split_by_hash(p) == split]


def objects(root: Path, split: Split) -> list[Path]:
    """Everyday photos without (most) faces, one per ImageNet class: 20% held out,
    10% validation, by a hash of the file name."""
    def part(p: Path) -> Split:
        h = zlib.crc32(p.name.encode()) % 10
        return "test" if h in (0, 5) else "val" if h == 3 else "train"
    return [p for p in list_pictures(root / "photos" / "objects", recursive=False) if part(p) == split]


#: scenes/camvid: the drive of each split (hold out by drive, as the data asks).
CAMVID_DRIVES: dict[str, tuple[str, ...]] = {"test": ("Seq05VD",), "val": ("0006R0",), "train": ("0001TP", "0016E5")}


def camvid(root: Path, split: Split) -> list[Path]:
    """Street frames from a driving car, split by drive (the second field of the name)."""
    return [p for p in list_pictures(root / "scenes" / "camvid", recursive=False)
            if p.stem.split("_")[1] in CAMVID_DRIVES[split]]


def utkface(root: Path, split: Split) -> list[Path]:
    # UTKFace is a training source; the held-out face source is LFW
    return _hashed(list_pictures(root / "faces" / "utkface", recursive=False), split)


def lfw(root: Path) -> list[Path]:
    """Held-out face source: never trained on."""
    return list_pictures(root / "faces" / "lfw", recursive=False)


def people(root: Path) -> list[Path]:
    """Whole photos of one or a few people (the person-mask pack): never trained on
    by the orientation classifier, a held-out set of the kind users send."""
    return list_pictures(root / "segmentation" / "people" / "images")


def genki(root: Path, split: Split) -> list[Path]:
    return _hashed(list_pictures(root / "smile" / "genki4k_train"), split)


def gender_web(root: Path, split: Split) -> list[tuple[Path, int]]:
    """Adult web faces labelled by gender (0 male, 1 female, as UTKFace); no ages."""
    return [(p, label) for label, folder in ((0, "man"), (1, "woman"))
            for p in _hashed(list_pictures(root / "faces" / "gender_web" / folder), split)]


def frames68(root: Path, split: Split) -> list[Path]:
    """Video frames of people (the 68-landmark pack), split by a hash of the file name."""
    return _hashed(list_pictures(root / "landmarks" / "frames68", recursive=False), split)


def frames68_landmarks(root: Path) -> dict[str, list[list[float]]]:
    """The 68 landmarks [x, y] (iBUG order: eyes are points 36-41 and 42-47) of each
    video frame, by file name."""
    import json

    return json.loads((root / "landmarks" / "frames68" / "landmarks.json").read_text())


def utkface_labels(path: Path) -> dict[str, int | None]:
    """age, gender (0 male, 1 female) and race from a UTKFace file name."""
    parts = path.name.split("_")
    def as_int(i: int) -> int | None:
        try:
            return int(parts[i])
        except (IndexError, ValueError):
            return None
    return {"age": as_int(0), "gender": as_int(1), "race": as_int(2)}
