"""One registry of models: name -> class, weights file and sha256."""

from faceup.models.base import Model, ModelInfo, get_model, registry

__all__ = ["Model", "ModelInfo", "get_model", "registry"]
