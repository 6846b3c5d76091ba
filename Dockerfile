# faceup HTTP service, CPU only. The models are inside the package (no download
# at start). Build: docker build -t faceup .   Run: docker run -p 8000:8000 faceup
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    FACEUP_HOST=0.0.0.0 FACEUP_PORT=8000 FACEUP_WORKERS=2

RUN useradd --create-home --uid 10001 faceup
WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-cache-dir . && rm -rf /root/.cache

USER faceup
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4).status != 200)"
CMD ["faceup", "serve"]
