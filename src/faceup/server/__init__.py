"""The HTTP service: a thin door over `pipeline`.

    uvicorn --factory faceup.server:create_app      # or: faceup serve

Every model is loaded once per process before serving; blocking inference runs
in a bounded pool of threads (anyio's limiter), so memory stays flat under load:
at most `inference_threads` pictures are decoded and judged at once, each within
the pixel budget. A request whose client has gone is not started, and
`/predict` stops between its pictures when the client goes.
"""

from __future__ import annotations

import contextlib
import io
import re
from importlib import resources
from pathlib import Path
from typing import Annotated

import anyio
from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from PIL import Image
from starlette.exceptions import HTTPException as StarletteHTTPException

from faceup import __version__, imageio, orientation, pipeline
from faceup.errors import FaceupError
from faceup.models import base as models_base
from faceup.server.guard import TimedH11Protocol, UploadGuard, content_disposition
from faceup.schemas import AnalysisOut, InfoOut, PredictionOut
from faceup.settings import Settings

STATIC = Path(str(resources.files("faceup.server") / "static"))

MEDIA_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "TIFF": "image/tiff",
               "BMP": "image/bmp", "GIF": "image/gif", "HEIF": "image/heic", "AVIF": "image/avif"}

THOROUGH = ("Where the classifier is unsure and no face is found, look again for small, grey and "
            "high-contrast faces (slower on such pictures).")


#: Pictures of one POST /predict judged together (one classifier run); the
#: client is checked between such chunks.
PREDICT_CHUNK = 4


class ApiError(Exception):
    def __init__(self, status: int, message: str):
        self.status, self.message = status, message


#: The fields library messages name that are the server's settings, not a request's.
SETTINGS_NAMED = {"max_pixels": "the server's FACEUP_MAX_PIXELS"}


def spelled(message: str) -> str:
    """A library message in the HTTP service's spelling: a field it names in
    backticks is a form field (`format` -> format=), or a server setting."""
    return re.sub(r"`([a-z][a-z_]*)`", lambda m: SETTINGS_NAMED.get(m[1], m[1] + "="), message)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": spelled(message)}, status_code=status)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    models_base.configure(threads=settings.ort_threads,
                          providers=[p.strip() for p in settings.providers.split(",") if p.strip()])
    limiter = anyio.CapacityLimiter(settings.inference_threads)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        # Load and check every model before the first request (and warm up the
        # orientation path, which every endpoint takes).
        models_base.load_all()
        orientation.estimate(Image.new("RGB", (64, 64)))
        yield

    app = FastAPI(
        title="faceup",
        version=__version__,
        description="Find how a picture is turned and turn it back, before it reaches a face-recognition model.",
        lifespan=lifespan,
    )
    app.state.settings = settings

    app.add_middleware(UploadGuard, max_upload_bytes=settings.max_upload_bytes, api_key=settings.api_key,
                       body_timeout=settings.body_timeout)

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError):
        return _error(exc.status, exc.message)

    @app.exception_handler(FaceupError)
    async def faceup_error(_: Request, exc: FaceupError):
        return _error(exc.http_status, str(exc))

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError):
        problems = []
        for e in exc.errors():
            where = ".".join(str(p) for p in e.get("loc", ()) if p not in ("body",))
            problems.append(f"{where}: {e.get('msg')}" if where else str(e.get("msg")))
        hint = " (send the picture as multipart form field 'file')" if any("file" in p for p in problems) else ""
        return _error(422, "; ".join(problems) + hint)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException):
        return _error(exc.status_code, str(exc.detail))

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception):  # a bug: say so, without a traceback
        return _error(500, f"internal error ({type(exc).__name__}); the server logged it")

    async def read_upload(upload: UploadFile) -> bytes:
        data = await upload.read(settings.max_upload_bytes + 1)
        if len(data) > settings.max_upload_bytes:
            raise ApiError(413, f"upload is above the limit of {settings.max_upload_bytes:,} bytes")
        if not data:
            raise ApiError(400, f"the uploaded file '{upload.filename or 'file'}' is empty")
        return data

    async def single_fields(request: Request, many: tuple[str, ...] = ()) -> None:
        """Each form field once (a second `file` would be dropped without a word),
        but for the fields in `many`."""
        form = await request.form()
        twice = sorted(k for k in set(form.keys()) if k not in many and len(form.getlist(k)) > 1)
        if twice:
            raise ApiError(422, f"the form field{'s' if len(twice) > 1 else ''} {', '.join(twice)} came more than "
                                "once; send each once (POST /predict takes several 'file' fields)")

    def pixel_budget(datas: list[bytes]) -> None:
        """The decoded pixels a request asks for, its pictures added up (read from
        their headers, before any is decoded), within the request budget."""
        total = sum(imageio.header_pixels(d) for d in datas)
        if total > settings.max_request_pixels:
            raise ApiError(413, f"this request's pictures hold {total:,} pixels in all, above the limit of "
                                f"{settings.max_request_pixels:,} for one request; send them in several requests")

    async def work(request: Request, fn):
        """Run `fn` on an inference thread once one is free, unless the client
        has gone by then."""
        async with limiter:
            if await request.is_disconnected():
                raise ApiError(499, "the client closed the request")
            return await anyio.to_thread.run_sync(fn)

    def options(min_confidence: float | None, fmt: str | None = None, fine: bool = False,
                expand: bool = False, fill: str = "blur", thorough: bool = False) -> pipeline.Options:
        return pipeline.Options(
            min_confidence=min_confidence if min_confidence is not None else settings.min_confidence,
            max_pixels=settings.max_pixels, format=fmt, fine=fine, expand=expand, fill=fill, thorough=thorough)

    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(STATIC / "index.html")

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon():
        return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml")

    @app.get("/health", summary="Liveness: 200 when the process serves")
    async def health():
        return {"status": "ok"}

    @app.get("/presets", summary="The generated backgrounds POST /background takes as preset=")
    async def presets_list():
        from faceup import presets

        return [{"name": p.name, "description": p.description, "params": p.params} for p in presets.PRESETS.values()] \
            + [{"name": "auto", "description": "from the picture's own colours", "params": {}}]

    @app.get("/info", summary="Version, models with their sha256, onnxruntime providers", response_model=InfoOut)
    async def info():
        return models_base.describe_all()

    @app.post("/fix", summary="Turn a picture upright",
              responses={200: {"content": {"image/*": {}},
                               "description": "The fixed picture; X-Faceup-Rotation/Angle/Confidence headers."}})
    async def fix(
        request: Request,
        file: Annotated[UploadFile, File(description="The picture.")],
        fine: Annotated[bool, Form(description="Estimate and undo any angle, not only quarter turns.")] = False,
        min_confidence: Annotated[float | None, Form(description="Leave the picture as it is below this.")] = None,
        format: Annotated[str | None, Form(description="Output format; default: the input's.")] = None,
        expand: Annotated[bool, Form(description="With fine: keep the whole picture, fill the corners.")] = False,
        fill: Annotated[str, Form(description="With expand: a colour (white, #203040) or 'blur'.")] = "blur",
        thorough: Annotated[bool, Form(description=THOROUGH)] = False,
        tag_only: Annotated[bool, Form(description="No new pixels: the picture's own bytes with its EXIF "
                                                   "Orientation set so that it displays upright (JPEG, PNG).")] = False,
    ):
        await single_fields(request)
        data = await read_upload(file)
        opts = options(min_confidence, format or None, fine=fine, expand=expand, fill=fill, thorough=thorough)
        if tag_only and (format or fine):
            raise ApiError(422, "tag_only keeps the picture's own bytes: it takes neither format nor fine")
        pixel_budget([data])
        if tag_only:
            result = await work(request, lambda: pipeline.tag(data, opts, path=file.filename))
        else:
            result = await work(request, lambda: pipeline.fix(data, opts, path=file.filename))
        p = result.prediction
        name = imageio.output_name(Path(file.filename or "picture").name, "upright", result.format)
        headers = {
            "X-Faceup-Rotation": str(p.rotation),
            "X-Faceup-Angle": "" if p.angle is None else f"{p.angle:.2f}",
            "X-Faceup-Confidence": f"{p.confidence:.4f}",
            "X-Faceup-Confident": "true" if p.confident else "false",
            "X-Faceup-Turned": "true" if p.turned else "false",
            "X-Faceup-Exif-Orientation": str(p.exif_orientation),
            "Content-Disposition": content_disposition(name),
            "Access-Control-Expose-Headers": "X-Faceup-Rotation, X-Faceup-Angle, X-Faceup-Confidence, "
                                             "X-Faceup-Confident, X-Faceup-Turned, X-Faceup-Exif-Orientation, "
                                             "Content-Disposition",
        }
        return Response(result.data, media_type=MEDIA_TYPES[result.format], headers=headers)

    @app.post("/explain", summary="Why this way up: an occlusion map and the faces seen in each turn",
              responses={200: {"content": {"image/png": {}, "application/json": {}},
                               "description": "The explanation drawn (PNG), or as JSON with as_json."}})
    async def explain(
        request: Request,
        file: Annotated[UploadFile, File(description="The picture.")],
        as_json: Annotated[bool, Form(description="Answer JSON instead of a picture.")] = False,
        min_confidence: Annotated[float | None, Form()] = None,
    ):
        from faceup import explain as why

        await single_fields(request)
        data = await read_upload(file)
        opts = options(min_confidence)
        pixel_budget([data])

        def explain_it():
            result = why.explain(data, opts, path=file.filename)
            if as_json:
                return result.to_json()
            buf = io.BytesIO()
            why.draw(data, result, opts).save(buf, "PNG")
            return buf.getvalue()

        answer = await work(request, explain_it)
        if as_json:
            return answer
        name = imageio.output_name(Path(file.filename or "picture").name, "why", "png")
        return Response(answer, media_type="image/png", headers={"Content-Disposition": content_disposition(name)})

    @app.post("/predict", summary="How each picture is turned (the CLI's JSON contract)",
              response_model=PredictionOut | list[PredictionOut])
    async def predict(
        request: Request,
        file: Annotated[list[UploadFile], File(description="One or more pictures (repeat the field).")],
        min_confidence: Annotated[float | None, Form()] = None,
        fine: Annotated[bool, Form(description="Estimate any angle from the main face.")] = False,
        thorough: Annotated[bool, Form(description=THOROUGH)] = False,
    ):
        await single_fields(request, many=("file",))
        if len(file) > settings.max_parts:
            raise ApiError(413, f"{len(file)} pictures in one request, above the limit of {settings.max_parts}; "
                                "send them in several requests")
        opts = options(min_confidence, fine=fine, thorough=thorough)
        datas: list[bytes | ApiError] = []
        for upload in file:
            try:
                datas.append(await read_upload(upload))
            except ApiError as exc:
                if len(file) == 1:
                    raise
                datas.append(exc)
        pixel_budget([d for d in datas if isinstance(d, bytes)])
        # judged PREDICT_CHUNK at a time (decoded once, one classifier run each), the
        # client checked between chunks: a client that has gone stops the rest
        good = [(i, d) for i, d in enumerate(datas) if isinstance(d, bytes)]
        preds: dict[int, pipeline.Prediction] = {}
        for start in range(0, len(good), PREDICT_CHUNK):
            part = good[start:start + PREDICT_CHUNK]
            got = await work(request, lambda p=part: pipeline.predict_many(
                [d for _, d in p], opts, paths=[file[i].filename for i, _ in p]))
            preds.update(zip((i for i, _ in part), got))
        if len(file) == 1 and preds[0].exception is not None:
            raise preds[0].exception
        answers = [preds[i].to_json() if i in preds else
                   pipeline.Prediction(path=file[i].filename, error=d.message).to_json()
                   for i, d in enumerate(datas)]
        answers = [{**a, "error": spelled(a["error"])} if a["error"] else a for a in answers]
        return answers[0] if len(answers) == 1 else answers

    @app.post("/analyze", summary="Upright the picture, then every face with smile, age and gender",
              response_model=AnalysisOut)
    async def analyze(
        request: Request,
        file: Annotated[UploadFile, File(description="The picture.")],
        only: Annotated[str | None, Form(description="Comma-separated: faces,smile,age,gender.")] = None,
        fine: Annotated[bool, Form()] = False,
        min_confidence: Annotated[float | None, Form()] = None,
        thorough: Annotated[bool, Form(description=THOROUGH)] = False,
    ):
        await single_fields(request)
        asked = pipeline.parse_only(only)  # BadOptionError: 422 naming `only`
        data = await read_upload(file)
        opts = options(min_confidence, fine=fine, thorough=thorough)
        pixel_budget([data])
        res = await work(request, lambda: pipeline.analyze(data, opts, path=file.filename, only=asked))
        if res.prediction.exception is not None:
            raise res.prediction.exception
        return res.to_json()

    @app.post("/background", summary="Upright the picture, then replace what is behind the people",
              responses={200: {"content": {"image/*": {}}, "description": "The picture with its background replaced."}})
    async def background(
        request: Request,
        file: Annotated[UploadFile, File(description="The picture.")],
        color: Annotated[str | None, Form(description="A colour: white, #203040.")] = None,
        image: Annotated[UploadFile | None, File(description="A picture to put behind the people.")] = None,
        blur: Annotated[float | None, Form(description="Blur radius in pixels (0: 2% of the longer side).")] = None,
        transparent: Annotated[bool, Form(description="A transparent background (PNG with alpha).")] = False,
        preset: Annotated[str | None, Form(description="A generated background: a name from GET /presets "
                                                        "(or auto), with parameters as NAME:key=value,...")] = None,
        format: Annotated[str | None, Form(description="Output format; default: the input's "
                                                       "(PNG when transparent).")] = None,
        fine: Annotated[bool, Form()] = False,
        min_confidence: Annotated[float | None, Form()] = None,
        thorough: Annotated[bool, Form(description=THOROUGH)] = False,
    ):
        from faceup.background import Replacement

        await single_fields(request)
        bg_data = await read_upload(image) if image is not None and image.filename else None
        how = Replacement(color=color or None, image=bg_data, blur=blur, transparent=transparent,
                          preset=preset or None)
        data = await read_upload(file)
        opts = options(min_confidence, format or None, fine=fine, thorough=thorough)
        pixel_budget([data] + ([bg_data] if bg_data else []))
        result = await work(request, lambda: pipeline.background(data, how, opts, path=file.filename))
        p = result.prediction
        name = imageio.output_name(Path(file.filename or "picture").name, "background", result.format)
        headers = {
            "X-Faceup-Rotation": str(p.rotation),
            "X-Faceup-Turned": "true" if p.turned else "false",
            "Content-Disposition": content_disposition(name),
            "Access-Control-Expose-Headers": "X-Faceup-Rotation, X-Faceup-Turned, Content-Disposition",
        }
        return Response(result.data, media_type=MEDIA_TYPES[result.format], headers=headers)

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


__all__ = ["create_app", "Settings", "TimedH11Protocol"]
