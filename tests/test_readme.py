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


def test_the_readme_is_short_and_its_links_resolve():
    text = README.read_text()
    assert len(text.splitlines()) <= 300
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text)
    assert links
    for link in links:
        if "://" not in link:
            assert (README.parent / link).exists(), link


def test_the_readme_the_docs_and_the_code_speak_of_the_project_alone():
    # no sessions, runs or issue numbers: a reader who was not there can follow them
    root = README.parent
    pages = [README, root / "CONTRIBUTING.md", root / "Makefile", root / "Dockerfile",
             *sorted((root / "docs").glob("*.md")),
             *(p for folder in ("src", "benchmarks", "tools") for p in sorted((root / folder).rglob("*.py")))]
    for page in pages:
        text = page.read_text()
        found = re.findall(r"(?i)\b(?:this|previous|earlier|last|next|fourth|fifth|sixth) sessions?\b|"
                           r"\bissue \d+|\bissues? #\d+", text)
        assert not found, (page.name, found)


def test_make_docs_builds_the_site_in_strict_mode(tmp_path):
    import os
    import subprocess
    import sys

    root = README.parent
    mkdocs = Path(sys.executable).parent / "mkdocs"
    res = subprocess.run([str(mkdocs), "build", "--strict", "--site-dir", str(tmp_path / "site")], cwd=root,
                         capture_output=True, text=True, timeout=300, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert res.returncode == 0, res.stderr[-3000:]
    site = tmp_path / "site"
    for page in ("index.html", "cli/index.html", "python/index.html", "http-api/index.html", "measurements/index.html",
                 "research/index.html", "batch/index.html", "licences/index.html"):
        assert (site / page).is_file(), page
    cli = (site / "cli" / "index.html").read_text()
    assert "faceup[ray]" in cli and "--min-confidence" in cli  # the reference made from the Typer app
    api = (site / "http-api" / "index.html").read_text()
    assert "POST /fix" in api and "min_confidence" in api  # made from the OpenAPI schema
    python = (site / "python" / "index.html").read_text()
    assert 'id="faceup.pipeline.fix"' in python and 'id="faceup.errors.FaceupError"' in python


def test_help_keeps_the_install_line_of_each_extra_at_any_width():
    from conftest import faceup_cli

    for width in ("40", "80", "200"):
        for command, extra in (("train", "faceup[train]"), ("batch", "faceup[ray]")):
            import os
            import subprocess
            import sys

            exe = Path(sys.executable).parent / "faceup"
            res = subprocess.run([str(exe), command, "--help"], capture_output=True, text=True, timeout=60,
                                 env={**os.environ, "COLUMNS": width})
            assert extra in " ".join(res.stdout.split()), (command, width, res.stdout[:400])
    assert faceup_cli("--help").returncode == 0
