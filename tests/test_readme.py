"""The README's Python snippets run as they are written (with photo.jpg, a folder
of scans with a broken file, and a PIL image at hand)."""

from __future__ import annotations

import re
from pathlib import Path

from conftest import jpeg_bytes, turn

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_readmes_python_snippets_run(tmp_path, monkeypatch, astronaut_small):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) >= 2
    (tmp_path / "photo.jpg").write_bytes(jpeg_bytes(turn(astronaut_small, 90)))
    scans = tmp_path / "scans"
    scans.mkdir()
    (scans / "a.jpg").write_bytes(jpeg_bytes(turn(astronaut_small, 180)))
    (scans / "broken.jpg").write_bytes(b"not a picture")
    monkeypatch.chdir(tmp_path)
    for code in blocks:
        space = {"pil_image": turn(astronaut_small, 270)}
        exec(compile(code, "README.md", "exec"), space)  # noqa: S102 - the README's own code
        if "fixed" in space and "exc" not in code:
            assert space["fixed"].prediction.rotation == 90


def test_make_docs_builds_the_api_page(tmp_path):
    import re
    import subprocess
    import sys

    makefile = (Path(__file__).resolve().parents[1] / "Makefile").read_text()
    modules = re.search(r"DOC_MODULES := ((?:.*\\\n)*.*)\n", makefile).group(1).replace("\\", " ").split()
    pdoc = Path(sys.executable).parent / "pdoc"
    subprocess.run([str(pdoc), *modules, "-o", str(tmp_path), "--no-search", "--no-show-source"], check=True,
                   capture_output=True, timeout=300)
    page = (tmp_path / "faceup" / "pipeline.html").read_text()
    for name in ("predict", "fix", "analyze", "background", "Options", "Prediction", "Fixed"):
        assert f'id="{name}"' in page, name
    errors = (tmp_path / "faceup" / "errors.html").read_text()
    assert 'id="FaceupError"' in errors and "a person can act on" in errors
