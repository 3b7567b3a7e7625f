"""The report page in a real browser (headless Chromium): a report of tiny real runs (toy, image, text, a resumed
and a diverged one) read at a laptop's width (1280 px) and a phone's (390 px). Skipped, with the reason, where
selenium, chromium or chromedriver is missing (`make test` installs Debian's chromium and chromium-driver)."""

import json

import pytest
from report_in_browser import WIDTHS, look, missing_browser, open_browser, write_tiny_report

pytestmark = [pytest.mark.slow, pytest.mark.skipif(missing_browser() is not None,
                                                   reason=missing_browser() or "")]


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    """(summary.json, the report's files, {width: what the browser saw})."""
    root = tmp_path_factory.mktemp("browser")
    result = write_tiny_report(root / "runs", root / "report")
    driver = open_browser(root / "profile")
    try:
        seen = {width: look(driver, root / "report" / "index.html", width) for width in WIDTHS}
    finally:
        driver.quit()
    summary = json.loads((root / "report" / "summary.json").read_text())["runs"]
    return summary, result["files"], seen


@pytest.mark.parametrize("width", WIDTHS)
def test_the_page_is_no_wider_than_the_window(page, width):
    seen = page[2][width]
    assert seen["window"] == width
    assert seen["page"] <= width and seen["body"] <= width, f"{seen['page']} px wide in a {width} px window"
    too_wide = [(alt, right) for alt, _, right in seen["images"] if right > width + 0.5]
    assert not too_wide, f"figures past the window's edge: {too_wide}"


def test_every_image_is_decoded(page):
    summary, files, seen = page
    pictures = [f for f in files if f.endswith((".png", ".gif"))]
    surfaces = sum(r["command"] == "toy" and r["iterations"] > 0 for r in summary)   # figures/final.png
    for width in WIDTHS:
        images = seen[width]["images"]
        assert len(images) == len(pictures) + surfaces
        assert seen[width]["complete"] and all(natural > 0 for _, natural, _ in images), images


def test_the_browser_reports_no_error_or_warning(page):
    for width in WIDTHS:
        assert page[2][width]["console"] == []


def test_every_run_and_metric_of_the_summary_is_on_the_page(page):
    summary, _, seen = page
    assert {r["run"] for r in summary} == {"toy", "image", "text", "resumed", "diverged"}
    assert {r["segments"] for r in summary if r["run"] == "resumed"} == {2}
    assert [r["status"] for r in summary if r["run"] == "diverged"] == ["incomplete"]
    for width in WIDTHS:
        text = seen[width]["text"]
        for r in summary:
            assert r["run"] in text and r["label"] in text
            for metric in r["metrics"]:
                assert metric in text, (r["run"], metric)
            for stat in r["stats"]:
                assert stat in text, (r["run"], stat)


def test_the_page_makes_no_network_request(page):
    """It must work offline and as an e-mail attachment: the page itself (file:) and its inlined images (data:)
    are the only things the browser loads."""
    for width in WIDTHS:
        requests = page[2][width]["requests"]
        assert any(url.startswith("file:") for url in requests)   # the page itself: the log is recording
        assert [url for url in requests if not url.startswith(("file:", "data:"))] == []

