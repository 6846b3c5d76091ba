"""One registry of models: name -> class, weights file and sha256.

Importing this package registers every model class; weights load lazily."""

from faceup.models import angle, attributes, blazeface, facecrop, facemesh, orientation, segmentation  # noqa: E402,F401 - register the models
from faceup.models.base import Model, ModelInfo, Runtime, configure, describe_all, get, get_model, registry

__all__ = ["Model", "ModelInfo", "Runtime", "configure", "describe_all", "get", "get_model", "registry"]
