"""faceup: find how a picture is turned and turn it back, before it reaches a
face-recognition model.

The library is `faceup.pipeline`; the command line (`faceup`) and the HTTP
service (`faceup.server.create_app`) are thin doors over it.

- `faceup.pipeline.predict` / `predict_many` / `predict_iter`: how a picture is
  turned (`Prediction`), never raising for a bad picture;
- `faceup.pipeline.fix` / `fix_many` / `fix_iter`: the picture turned back
  (`Fixed`: the encoded bytes and their format);
- `faceup.pipeline.analyze`: the faces of the upright picture with smile, age
  and gender (`Analysis`);
- `faceup.pipeline.background`: the upright picture with a new background
  (`faceup.background.Replacement`, `faceup.presets`);
- `faceup.explain.explain`: why this way up;
- `faceup.pipeline.Options`: the choices they share;
- `faceup.errors`: what a user can meet, each a `FaceupError` with a message a
  person can act on.

Sources are a path, the bytes of a picture file, a binary file object or a PIL
Image. Rotations are in degrees **clockwise**: how far the displayed picture is
turned away from upright.

    >>> from faceup import pipeline
    >>> pred = pipeline.predict("photo.jpg")                 # doctest: +SKIP
    >>> pred.rotation, pred.confidence, pred.confident       # doctest: +SKIP
    (90, 0.9987, True)
"""

__version__ = "0.1.0"
