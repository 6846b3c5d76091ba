# faceup HTTP service, CPU only. The models are inside the package (no download
# at start).
#   docker build -t faceup .   and   docker run -p 8000:8000 faceup
# BASE is any image with Python 3.11 as `python3` and its venv module: the slim
# Python image by default; `make image` builds a Debian bookworm base with
# mmdebstrap when no registry answers (tools/image.sh) and builds with buildah.
#
# Two stages: the builder installs faceup into a virtual environment; the final
# image is BASE with that environment and nothing else: no pip, no compilers, no
# caches, no test folders of the dependencies. docs/container.md says where the
# bytes go.
ARG BASE=python:3.11-slim

FROM ${BASE} AS builder
# heic: the service writes HEIC back as HEIC (phones upload HEIC), with
# pillow-heif's x265 encoder (GPL, 22 MB). Build with --build-arg EXTRAS= for an
# image without it, which still reads HEIC and refuses to write it with a message.
ARG EXTRAS=heic
# The bytecode of what the commands and the service import is written once, here
# (as the Makefile does): the final image sets PYTHONDONTWRITEBYTECODE, and without
# it every process would compile numpy, Pillow and faceup from source at start.
ARG WARM=faceup.cli,faceup.pipeline,faceup.faces,faceup.background,faceup.explain,faceup.presets,faceup.server,uvicorn.main
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# Where a package index is reached through a proxy with its own CA (as on the
# machines `make image` is tested on): the CA bundle pip should trust, mounted
# into the build, and the index; unset, pip uses its defaults.
ARG PIP_CERT
ARG PIP_INDEX_URL=https://pypi.org/simple
WORKDIR /src
COPY pyproject.toml README.md LICENSE NOTICE.md ./
COPY src ./src
# pip runs from a throwaway environment (/opt/pip) and installs into /opt/venv,
# which therefore holds no pip. Not copied on, as the service never imports them:
# the dependencies' test folders and numpy's test modules, numpy.distutils and
# f2py, onnxruntime's tools (quantization, transformers), and pi-heif where
# pillow-heif (a superset: it reads and writes) is installed.
RUN python3 -m venv /opt/pip \
 && python3 -m venv --without-pip /opt/venv \
 && /opt/pip/bin/pip --python /opt/venv/bin/python install --no-compile ".${EXTRAS:+[$EXTRAS]}" \
 && site=$(/opt/venv/bin/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])") \
 && find "$site" -depth -type d \( -name tests -o -name __pycache__ \) -exec rm -rf {} + \
 && rm -rf "$site/onnxruntime/tools" "$site/onnxruntime/transformers" "$site/onnxruntime/quantization" \
           "$site/onnxruntime/datasets" "$site/onnxruntime/backend" "$site/numpy/distutils" "$site/numpy/f2py" \
           "$site"/numpy/_core/_simd.*.so "$site"/numpy/_core/_*_tests.*.so \
 && if [ -d "$site/pillow_heif" ]; then rm -rf "$site/pi_heif" "$site/pi_heif.libs"; fi \
 && /opt/venv/bin/python -c "import $WARM" \
 && /opt/venv/bin/faceup --version

FROM ${BASE}
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PATH=/opt/venv/bin:$PATH \
    FACEUP_HOST=0.0.0.0 FACEUP_PORT=8000 FACEUP_WORKERS=2
# The service's own user (no login, no password); written directly so that a
# base without useradd serves as well.
RUN echo 'faceup:x:10001:10001:faceup:/home/faceup:/usr/sbin/nologin' >> /etc/passwd \
 && echo 'faceup:x:10001:' >> /etc/group \
 && mkdir -p /home/faceup && chown 10001:10001 /home/faceup
COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /src/LICENSE /src/NOTICE.md /usr/share/doc/faceup/
USER 10001:10001
WORKDIR /home/faceup
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import os, sys, urllib.request; port = os.environ.get('FACEUP_PORT', '8000'); sys.exit(urllib.request.urlopen(f'http://127.0.0.1:{port}/health', timeout=4).status != 200)"]
CMD ["faceup", "serve"]
