"""The shapes of faceup's answers, one set for every door: the CLI's JSON lines
(key for key), the HTTP service's response models (so `/openapi.json` describes
every answer, and the API fuzz checks them) and the batch job's results table
(its prediction columns are made from `PredictionOut`)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class PredictionOut(BaseModel):
    """How one picture is turned: `faceup predict --json`'s object."""

    path: str | None = Field(description="The uploaded file's name.")
    rotation: int | None = Field(description="Degrees clockwise the displayed picture is turned from upright "
                                             "(0, 90, 180, 270); null when it could not be read.")
    confidence: float | None = Field(description="Calibrated probability that `rotation` is right (0..1).")
    confident: bool | None = Field(description="confidence at or above min_confidence (by default a stricter one where no "
                                    "face is found): `fix` turns the picture.")
    angle: float | None = Field(description="With fine: the angle in degrees clockwise (0..360), else null.")
    exif_orientation: int | None = Field(description="The file's EXIF Orientation (1..8), already applied.")
    error: str | None = Field(description="Why the picture could not be judged, else null.")


class FaceOut(BaseModel):
    box: list[float | None] = Field(description="[x0, y0, x1, y1] in the upright picture's pixels.")
    score: float | None
    landmarks: list[list[float | None]] = Field(description="Eyes, nose tip, mouth corners: [x, y] each.")
    smile: float | None
    age: float | None
    gender: str | None
    gender_score: float | None
    whole_picture: bool = Field(False, description="No face was found, and the picture, shaped like a face crop, "
                                                   "was analysed as one face (its box then covers most of it).")


class AnalysisOut(PredictionOut):
    """`predict`'s object plus every face of the upright picture."""

    faces: list[FaceOut]


class ModelOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str
    file: str
    sha256: str
    loaded: bool
    providers: list[str]


class InfoOut(BaseModel):
    version: str
    onnxruntime: str
    execution_providers: list[str]
    #: Asked for (settings), and used: those asked for that this onnxruntime has, then the CPU.
    providers_asked: list[str]
    providers_used: list[str]
    models: list[ModelOut]
