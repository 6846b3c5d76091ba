"""Settings for the service: environment variables with a FACEUP_ prefix, or flags."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict

from faceup.imageio import DEFAULT_MAX_PIXELS


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FACEUP_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    #: Largest upload accepted, in bytes (413 above it).
    max_upload_bytes: int = 20 * 1024 * 1024
    max_pixels: int = DEFAULT_MAX_PIXELS
    #: When set, POST endpoints need the header X-API-Key with this value.
    api_key: str | None = None
    #: Inferences running at once per process (a bounded thread pool).
    inference_threads: int = 2
    #: onnxruntime threads per inference.
    ort_threads: int = 1
    #: onnxruntime execution providers, best first, comma-separated (e.g.
    #: "cuda,cpu"): each used when present, the CPU always last; GET /info shows the choice.
    providers: str = ""
    min_confidence: float | None = None
    #: Pictures one POST /predict may carry (413 above it).
    max_parts: int = 16
    #: Decoded pixels one request may ask for, its pictures added up (413 above
    #: it): with `inference_threads`, what bounds the server's memory.
    max_request_pixels: int = DEFAULT_MAX_PIXELS
    #: Seconds a client has to send a request's headers, and its whole body
    #: (408 after that): slow clients cannot hold connections open.
    header_timeout: float = 10.0
    body_timeout: float = 60.0
    #: Seconds the server waits for requests in flight after SIGTERM.
    shutdown_timeout: float = 3.0
