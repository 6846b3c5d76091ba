"""The container image, built and run on this machine with Debian's tools
(tools/image.sh: mmdebstrap for the base when no registry answers, buildah to
build, `buildah run` to serve): it answers /fix faithfully, as its own user,
and its HEALTHCHECK tells a serving container from a stopped one."""

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from conftest import REPO, free_port, jpeg_bytes, mean_abs_diff, turn

#: A slow file: left out of `make test-fast` (pytest -m "not slow").
pytestmark = pytest.mark.slow

IMAGE = "localhost/faceup:latest"
MISSING = [t for t in ("podman", "buildah", "mmdebstrap") if shutil.which(t) is None]
if MISSING or os.geteuid() != 0:
    pytest.skip(f"the image tests need root and {', '.join(MISSING) or 'podman, buildah, mmdebstrap'} "
                "(make image-tools installs them)", allow_module_level=True)


def sh(*cmd: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def image():
    r = sh(str(REPO / "tools" / "image.sh"), "build")
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(sh("podman", "image", "inspect", IMAGE).stdout)[0]


@pytest.fixture(scope="module")
def served(image):
    """`faceup serve` inside a container of the image (as the image's own user,
    its own CMD), on a free port of this machine."""
    ctr = sh("buildah", "from", "--quiet", IMAGE).stdout.strip()
    port = free_port()
    proc = subprocess.Popen(["buildah", "run", "--isolation", "chroot", "--network", "host",
                             "-e", f"FACEUP_PORT={port}", "-e", "FACEUP_WORKERS=1", ctr, "--",
                             *image["Config"]["Cmd"]], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("the server in the container did not answer /health within 90 s")
    yield ctr, port, url, proc
    proc.terminate()
    proc.wait(20)
    sh("buildah", "rm", ctr)


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def test_the_image_is_small_and_its_own_user_is_not_root(image):
    assert image["Size"] <= 350e6, f"{image['Size'] / 1e6:.0f} MB"
    assert image["Config"]["User"].split(":")[0] not in ("", "0", "root")


def test_the_image_serves_fix_upright_and_faithfully(served, astronaut_small):
    from faceup import pipeline

    _, _, url, _ = served
    turned = jpeg_bytes(turn(astronaut_small, 90))
    r = httpx.post(url + "/fix", files={"file": ("turned.jpg", turned, "image/jpeg")}, timeout=60)
    assert r.status_code == 200 and r.headers["x-faceup-rotation"] == "90"
    # the same bytes as the library here (the lossless JPEG turn), and upright
    assert r.content == pipeline.fix(turned).data
    from io import BytesIO

    from PIL import Image

    assert mean_abs_diff(Image.open(BytesIO(r.content)).convert("RGB"), astronaut_small) < 6


def test_the_server_runs_as_the_images_user(served):
    _, _, _, proc = served
    uids = set()
    for pid in descendants(proc.pid):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        if b"faceup serve" in cmd and b"buildah" not in cmd:
            uids.add(int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1]))
    assert uids and 0 not in uids, uids


def test_the_healthcheck_tells_serving_from_stopped(image, served):
    ctr, port, _, _ = served
    check = image["Healthcheck"]["Test"]
    assert check[0] == "CMD"
    r = sh("buildah", "run", "--isolation", "chroot", "--network", "host", "-e", f"FACEUP_PORT={port}", ctr, "--",
           *check[1:], timeout=60)
    assert r.returncode == 0, r.stderr
    r = sh("buildah", "run", "--isolation", "chroot", "--network", "host", "-e", f"FACEUP_PORT={free_port()}", ctr,
           "--", *check[1:], timeout=60)
    assert r.returncode != 0
