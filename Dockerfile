# faceup HTTP service, CPU only. The models are inside the package (no download
# at start). Build: docker build -t faceup .   Run: docker run -p 8000:8000 faceup
#
# Two stages: the builder installs faceup into a virtual environment; the final
# image holds that environment and nothing else: no pip, no compilers, no caches,
# no test folders of the dependencies. benchmarks/install_size.py runs the same
# builder commands here and reports the size of what is copied.

FROM python:3.11-slim AS builder
# heic: the service writes HEIC back as HEIC (phones upload HEIC); build with
# --build-arg EXTRAS= for an image without the x265 encoder (GPL, 22 MB), which
# still reads HEIC and refuses to write it with a message.
ARG EXTRAS=heic
# The bytecode of what the commands and the service import is written once, here
# (as the Makefile does): the final image sets PYTHONDONTWRITEBYTECODE, and without
# it every process would compile numpy, Pillow and faceup from source at start.
ARG WARM=faceup.cli,faceup.pipeline,faceup.faces,faceup.background,faceup.explain,faceup.presets,faceup.server,uvicorn.main
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN python -m venv --without-pip /opt/venv \
 && python -m pip --python /opt/venv/bin/python install --no-compile ".${EXTRAS:+[$EXTRAS]}" \
 && find /opt/venv -depth -type d \( -name tests -o -name __pycache__ \) -path "*/site-packages/*" -exec rm -rf {} + \
 && /opt/venv/bin/python -c "import $WARM" \
 && rm -rf /root/.cache

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PATH=/opt/venv/bin:$PATH \
    FACEUP_HOST=0.0.0.0 FACEUP_PORT=8000 FACEUP_WORKERS=2
RUN useradd --create-home --uid 10001 faceup
COPY --from=builder /opt/venv /opt/venv
USER faceup
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4).status != 200)"
CMD ["faceup", "serve"]
