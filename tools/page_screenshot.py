"""docs/page-phone.jpg: the web page on a phone-width screen (390 x 844), after
a turned portrait (scikit-image's astronaut, NASA, public domain) was dropped
and its "why?" view opened. Starts `faceup serve` itself; needs Debian's
chromium and playwright (the test extra).

    .venv/bin/python tools/page_screenshot.py
"""

from __future__ import annotations

import io
import shutil
import sys
import tempfile
from pathlib import Path

from PIL import Image
from playwright.sync_api import sync_playwright
from skimage import data

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_browser import CHROMIUM_ARGS  # noqa: E402
from test_server import start_server  # noqa: E402


def main() -> None:
    proc, url = start_server()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            src = Path(tmp) / "portrait.jpg"
            buf = io.BytesIO()
            Image.fromarray(data.astronaut()).resize((320, 320)).transpose(Image.Transpose.ROTATE_270).save(
                buf, "JPEG", quality=90)
            src.write_bytes(buf.getvalue())
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 390, "height": 844})
                page.goto(url + "/")
                page.set_input_files("#picker", str(src))
                page.wait_for_selector(".card[data-state=done]", timeout=60_000)
                page.click(".whybutton")
                page.wait_for_selector(".card[data-why=shown]", timeout=60_000)
                page.wait_for_function("document.querySelector('.whyimg').complete")
                dest = Path(__file__).resolve().parents[1] / "docs" / "page-phone.jpg"
                page.screenshot(path=str(dest), full_page=True, type="jpeg", quality=80)
                browser.close()
        print(dest)
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    main()
