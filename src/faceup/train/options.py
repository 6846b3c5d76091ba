"""Training options read before torch is imported (by `train.run` and the trainers)."""

from __future__ import annotations

from faceup.errors import BadOptionError

#: Extra upright sources the angle model can learn from (their training parts).
ALSO = ("crowds", "frames68", "objects", "camvid")


def parse_also(text: str, known: tuple[str, ...] = ALSO) -> tuple[tuple[str, int], ...]:
    """"crowds:14,frames68:3" -> (("crowds", 14), ("frames68", 3)); BadOptionError names what is wrong."""
    out = []
    for item in (x.strip() for x in text.split(",") if x.strip()):
        name, _, n = item.partition(":")
        if name not in known or not n.isdigit() or int(n) < 1:
            raise BadOptionError(f"`also` {item!r}: give NAME:SAMPLES with NAME one of {', '.join(known)} "
                                 "and SAMPLES >= 1")
        out.append((name, int(n)))
    return tuple(out)
