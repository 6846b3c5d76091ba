"""The web page in a real headless Chromium (Debian's package, driven by playwright).

Skipped, with the reason, where Chromium cannot be had (the Makefile installs it
with apt-get when it runs as root)."""

from __future__ import annotations

import shutil

import pytest
from conftest import jpeg_bytes, turn

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (make test installs it as root)")]

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def page_url(server):
    return server


@pytest.fixture
def page(page_url):
    """The web page, open in a fresh headless Chromium."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            pg = browser.new_page()
            pg.goto(page_url + "/")
            yield pg
        finally:
            browser.close()


def test_upload_a_turned_photo_and_see_it_upright(page, tmp_path, astronaut_small):
    src = tmp_path / "turned.jpg"
    src.write_bytes(jpeg_bytes(turn(astronaut_small.resize((256, 192)), 90)))  # 192 wide, 256 tall
    page.set_input_files("#picker", str(src))
    card = page.locator(".card").first
    page.wait_for_selector(".card[data-state=done]", timeout=60_000)
    assert card.locator(".rotation").inner_text() == "90° clockwise"
    assert card.locator(".decision").inner_text() == "turned back by 90°"
    assert float(card.locator(".confidence").inner_text()) > 0.5
    # the picture shown as fixed really is upright: landscape again
    page.wait_for_function("document.querySelector('.card .fixed').naturalWidth > 0")
    w, h = page.evaluate("[document.querySelector('.card .fixed').naturalWidth,"
                         " document.querySelector('.card .fixed').naturalHeight]")
    assert (w, h) == (256, 192)
    assert card.locator(".download").get_attribute("download") == "turned.upright.jpg"
    # the analysis: one face boxed over the upright picture, with smile, age and gender
    assert card.locator(".boxes .box").count() == 1
    face = card.locator(".faces li").first.inner_text()
    assert "smile" in face and "age" in face and ("female" in face or "male" in face)
    page.screenshot(path=str(tmp_path / "page.png"))


def test_look_harder_makes_the_page_sure_of_a_small_face(page, tmp_path, astronaut):
    from PIL import Image

    from skimage import data as skdata

    small = Image.fromarray(skdata.rocket()).resize((640, 480))  # at a launch, her face about 26 px:
    small.paste(astronaut.resize((120, 120)), (440, 340))  # unseen in the whole views
    src = tmp_path / "small.jpg"
    src.write_bytes(jpeg_bytes(turn(small, 90)))
    page.uncheck("#analyze")
    page.set_input_files("#picker", str(src))
    page.wait_for_selector(".card[data-state=done]", timeout=60_000)
    assert page.locator(".card").first.locator(".decision").inner_text() == "not sure: left as it is"
    page.check("#thorough")
    again = tmp_path / "small-again.jpg"  # the same file again fires no change event
    again.write_bytes(src.read_bytes())
    page.set_input_files("#picker", str(again))
    page.wait_for_function("document.querySelectorAll('.card[data-state=done]').length === 2", timeout=60_000)
    assert page.locator(".card").last.locator(".decision").inner_text() == "turned back by 90°"  # in upload order
    assert page.locator(".count-turned").inner_text() == "1" and page.locator(".count-unsure").inner_text() == "1"


def test_a_broken_upload_shows_an_error(page, tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"this is not a picture" * 30)
    page.set_input_files("#picker", str(bad))
    page.wait_for_selector(".card[data-state=error]", timeout=60_000)
    assert "not a picture" in page.locator(".card .error").inner_text()


#: The width of the shown result and its top-right pixel (sky, no person), read in the page.
CORNER_PIXEL = """() => { const img = document.querySelector('.card .bgimg');
    const c = document.createElement('canvas'); c.width = img.naturalWidth; c.height = img.naturalHeight;
    const g = c.getContext('2d'); g.drawImage(img, 0, 0);
    return [img.naturalWidth, Array.from(g.getImageData(c.width - 6, 5, 1, 1).data)]; }"""


def test_replace_the_background_with_a_colour_and_a_picture(page, tmp_path, astronaut_small, coffee):
    src = tmp_path / "portrait.jpg"
    src.write_bytes(jpeg_bytes(turn(astronaut_small, 180)))
    bg = tmp_path / "coffee.jpg"
    bg.write_bytes(jpeg_bytes(coffee))
    page.set_input_files("#picker", str(src))
    page.wait_for_selector(".card[data-state=done]", timeout=60_000)
    card = page.locator(".card").first
    card.locator(".bgcolor").fill("#00ff00")
    card.locator(".bgtool button").click()
    page.wait_for_selector(".bgtool[data-state=done]", timeout=60_000)
    # read the shown result's pixels in the page: the sky corner is green now
    width, (r, g, b, _) = page.evaluate(CORNER_PIXEL)
    assert width == 256 and g > 200 and r < 60 and b < 60
    assert card.locator(".bgdownload").get_attribute("download") == "portrait.background.jpg"

    card.locator(".bgmode").select_option("image")
    card.locator(".bgimage").set_input_files(str(bg))
    page.evaluate("document.querySelector('.card .bgtool').dataset.state = ''")
    card.locator(".bgtool button").click()
    page.wait_for_selector(".bgtool[data-state=done]", timeout=60_000)
    page.wait_for_function("document.querySelector('.card .bgimg').complete")
    width, (r, g, b, _) = page.evaluate(CORNER_PIXEL)
    assert width == 256 and not (g > 200 and r < 60 and b < 60)  # the coffee picture now, not green
    page.screenshot(path=str(tmp_path / "background.png"), full_page=True)

    # a generated preset, picked from the list the server gives: the sky corner is sky blue
    card.locator(".bgmode").select_option("preset")
    page.wait_for_function("document.querySelectorAll('.card .bgpreset option').length >= 7")
    card.locator(".bgpreset").select_option("sky")
    page.evaluate("document.querySelector('.card .bgtool').dataset.state = ''")
    card.locator(".bgtool button").click()
    page.wait_for_selector(".bgtool[data-state=done]", timeout=60_000)
    page.wait_for_function("document.querySelector('.card .bgimg').complete")
    width, (r, g, b, _) = page.evaluate(CORNER_PIXEL)
    assert width == 256 and b > 180 and b > r + 60, (r, g, b)


def test_many_pictures_a_summary_one_zip_the_why_view_and_the_keyboard(page, tmp_path, astronaut_small, chelsea):
    import io
    import zipfile

    from PIL import Image

    a = tmp_path / "a-turned.jpg"
    a.write_bytes(jpeg_bytes(turn(astronaut_small, 90)))
    b = tmp_path / "b-upright.jpg"
    b.write_bytes(jpeg_bytes(chelsea.resize((300, 200))))
    bad = tmp_path / "c-broken.jpg"
    bad.write_bytes(b"not a picture at all" * 20)
    # the drop zone answers the keyboard: Enter opens the file picker (its input is clicked)
    page.evaluate("document.getElementById('picker').addEventListener('click', (e) => {"
                  " window.pickerOpened = true; e.preventDefault(); })")
    page.locator("#drop").focus()
    page.keyboard.press("Enter")
    page.wait_for_function("window.pickerOpened === true", timeout=10_000)
    page.set_input_files("#picker", [str(a), str(b), str(bad)])
    page.wait_for_function("document.querySelectorAll('.card[data-state=done], .card[data-state=error]').length == 3",
                           timeout=120_000)
    summary = page.locator("#summary").inner_text()
    assert "1 turned" in summary and "1 failed" in summary
    # every picture shown has a text alternative that names it
    alts = page.eval_on_selector_all(".card img:not([hidden])", "els => els.map(e => e.alt)")
    assert alts and all(alt for alt in alts)
    assert any("a-turned.jpg" in alt for alt in alts)
    # download all: one ZIP holding every upright picture
    with page.expect_download() as dl:
        page.click("#zip")
    path = tmp_path / "all.zip"
    dl.value.save_as(path)
    with zipfile.ZipFile(path) as z:
        assert z.testzip() is None
        names = sorted(z.namelist())
        assert names == ["a-turned.upright.jpg", "b-upright.upright.jpg"]
        assert Image.open(io.BytesIO(z.read("a-turned.upright.jpg"))).size == (256, 256)
    # the "why?" view of the turned one
    card = page.locator(".card", has_text="a-turned.jpg")
    card.locator(".whybutton").click()
    page.wait_for_selector(".card[data-why=shown]", timeout=60_000)
    page.wait_for_function("document.querySelector('.card[data-why=shown] .whyimg').naturalWidth > 300")


def test_the_page_fits_a_phone_screen(page_url, tmp_path, astronaut_small):
    from playwright.sync_api import sync_playwright

    src = tmp_path / "turned.jpg"
    src.write_bytes(jpeg_bytes(turn(astronaut_small, 90)))
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            pg = browser.new_page(viewport={"width": 390, "height": 844})
            pg.goto(page_url + "/")
            pg.set_input_files("#picker", str(src))
            pg.wait_for_selector(".card[data-state=done]", timeout=60_000)
            overflow = pg.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"{overflow} px wider than the phone's screen"
            pg.screenshot(path=str(tmp_path / "phone.png"), full_page=True)
        finally:
            browser.close()


def test_the_page_has_no_rough_edges(page_url, tmp_path, astronaut_small):
    """An empty page shows no summary or ZIP button; cards come in the order given;
    a HEIC's original is a note, not a broken image; a picture faceup is not sure
    of is captioned as left as it was; a failed upload shows no pictures, no "why?"
    and no download; "no faces found" is a sentence, not a numbered item; no 404
    (the favicon) on load."""
    from pathlib import Path

    from playwright.sync_api import sync_playwright

    samples = Path(__file__).resolve().parents[1] / "src" / "faceup" / "samples"
    missing: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            pg = browser.new_page()
            pg.on("response", lambda r: missing.append(r.url) if r.status == 404 else None)
            pg.goto(page_url + "/")
            pg.wait_for_load_state("networkidle")
            assert not pg.locator("#summary").is_visible() and not pg.locator("#zip").is_visible()
            bad = tmp_path / "broken.jpg"
            bad.write_bytes(b"not a picture")
            files = [samples / "astronaut-turned-90.jpg", samples / "chelsea-turned-270.heic",
                     samples / "rocket-turned-90.jpg", bad, samples / "coffee-upright.webp"]
            pg.set_input_files("#picker", [str(f) for f in files])
            pg.wait_for_function("document.querySelectorAll('.card[data-state=done], .card[data-state=error]')"
                                 ".length === 5", timeout=120_000)
            pg.wait_for_load_state("networkidle")
            cards = pg.locator(".card")
            assert [cards.nth(i).locator(".name").inner_text() for i in range(5)] == [f.name for f in files]
            # no broken image anywhere: every visible picture decoded
            broken = pg.evaluate("Array.from(document.querySelectorAll('img')).filter(i => i.offsetParent !== null"
                                 " && !(i.complete && i.naturalWidth > 0)).map(i => i.className)")
            assert broken == [], broken
            heic = cards.nth(1)
            assert heic.locator(".placeholder").is_visible() and not heic.locator(".original").is_visible()
            for i in (2, 4):  # the rocket and the coffee cup: faceup is not sure of them here
                card = cards.nth(i)
                if card.locator(".decision").inner_text().startswith("not sure"):
                    assert card.locator(".fixedcaption").inner_text() == "left as it was (not sure)"
            assert cards.nth(0).locator(".fixedcaption").inner_text() == "upright"
            failed = cards.nth(3)
            assert failed.get_attribute("data-state") == "error"
            assert not failed.locator("img").first.is_visible()
            assert not failed.locator(".whybutton").is_visible() and not failed.locator(".download").is_visible()
            rocket = cards.nth(2)
            pg.wait_for_function("document.querySelectorAll('.card')[2].querySelector('.nofaces').hidden === false"
                                 " || document.querySelectorAll('.card')[2].querySelectorAll('.faces li').length > 0")
            if rocket.locator(".faces li").count() == 0:
                assert rocket.locator(".nofaces").inner_text() == "No faces found."
            assert pg.locator("#summary").is_visible() and pg.locator("#zip").is_enabled()
        finally:
            browser.close()
    assert missing == [], missing
