"""faceup: find how a picture is turned and turn it back.

    >>> from faceup import pipeline
    >>> pred = pipeline.predict("photo.jpg")        # doctest: +SKIP
    >>> pred.rotation, pred.confidence, pred.confident  # doctest: +SKIP
"""

__version__ = "0.1.0"
