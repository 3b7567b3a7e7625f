"""A `wgan report` page as a person sees it: tiny real runs (toy, image, text, a resumed and a diverged one)
reported on, and the page opened in headless Chromium (Debian's chromium and chromium-driver, driven by
Selenium) at a laptop's and a phone's width.

Shared by tests/report/test_report_browser.py and `make report-screenshot`, which runs this file to draw
docs/report-1280.png and docs/report-390.png with the same runs, the same browser and the same widths:

    python tests/report_in_browser.py docs/
"""

from __future__ import annotations

import json
import random
import shutil
import sys
import tempfile
from pathlib import Path

WIDTHS = (1280, 390)   # a laptop's window and a phone's (CSS pixels)
HEIGHT = 900
CHROMIUM = ("/usr/bin/chromium", "/usr/lib/chromium/chromium")
CHROMEDRIVER = ("/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver")
# headless, and nothing that talks to the network on its own: a request the test sees came from the page
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--hide-scrollbars", "--force-device-scale-factor=1")


def missing_browser() -> str | None:
    """Why the page cannot be opened here (None when it can): selenium, chromium or chromedriver missing."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    if _first(CHROMIUM) is None:
        return "chromium is not installed (apt-get install chromium chromium-driver; `make test` does it as root)"
    if _first(CHROMEDRIVER) is None:
        return "chromedriver is not installed (apt-get install chromium-driver)"
    return None


def _first(paths) -> str | None:
    return next((p for p in paths if Path(p).is_file()), None)


# ---- tiny real runs -------------------------------------------------------------------------------------------
def tiny_runs(root: Path) -> list[Path]:
    """Five run directories trained for a few iterations on the CPU, in a few seconds: a toy run, an image run
    on a stand-in MNIST (sample grids, a validation estimate), a text run (JS divergences, text samples), a toy
    run stopped at 2 iterations and resumed to 4, and a toy run whose learning rate makes it diverge."""
    import torch

    from wgan_cli.config import ImageOptions, RunOptions, TextOptions, ToyOptions, TrainConfig
    from wgan_cli.errors import DivergedError
    from wgan_cli.runs import train_run
    from wgan_cli.textgen import TextTask
    from wgan_cli.toy import ToyTask
    from wgan_cli.image import ImageTask

    sys.path.insert(0, str(Path(__file__).resolve().parent))   # tests/: the stand-in data sets
    from standins import write_mnist

    def run(name: str, **kw) -> RunOptions:
        return RunOptions(out=str(root / name), device="cpu", log_every=1, **kw)

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        toy = ToyTask(ToyOptions(dim=8, n_eval=64))
        train_run(toy, TrainConfig(iters=4, batch_size=32), run("toy"))
        write_mnist(root / "data")
        image = ImageTask(ImageOptions(dataset="mnist", data_dir=str(root / "data"), arch="dcgan", dim=2,
                                       sample_every=1, eval_every=2, n_val=4, workers=0, download=False))
        train_run(image, TrainConfig(batch_size=8, n_critic=1, iters=4), run("image", save_every=100))
        rng = random.Random(0)
        corpus = root / "words.txt"
        corpus.write_text("\n".join(" ".join(rng.choice(["cat", "dog", "sun"]) for _ in range(rng.randint(2, 3)))
                                    for _ in range(200)) + "\n")
        text = TextTask(TextOptions(corpus=str(corpus), seq_len=12, dim=8, heldout=40, eval_every=2, n_eval=64))
        train_run(text, TrainConfig(iters=4, n_critic=1, batch_size=8, seed=3), run("text"))
        for iters in (2, 4):   # stopped at 2, resumed to 4: two segments
            train_run(ToyTask(ToyOptions(dim=8, n_eval=64)), TrainConfig(iters=iters, batch_size=32, seed=1),
                      run("resumed", save_every=2))
        try:
            train_run(ToyTask(ToyOptions(dim=8, n_eval=64)), TrainConfig(iters=4, batch_size=32, lr=1e30),
                      run("diverged"))
        except DivergedError:
            pass
    finally:
        torch.set_num_threads(threads)
    return [root / name for name in ("toy", "image", "text", "resumed", "diverged")]


# ---- the page in the browser ---------------------------------------------------------------------------------
def open_browser(profile: Path):
    """Headless Chromium through chromedriver, with a fresh profile, its console and network events logged."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = _first(CHROMIUM)
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(_first(CHROMEDRIVER)))
    driver.execute_cdp_cmd("Network.enable", {})
    return driver


def look(driver, page: Path, width: int, screenshot: Path | None = None) -> dict:
    """Open `page` in a window `width` CSS pixels wide and say what a reader gets: the page's width against the
    window's, each image's decoded width, the text, console messages and every URL the page requested."""
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": width, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": False})
    driver.get_log("browser"), driver.get_log("performance")   # drop what an earlier page left
    driver.get(page.resolve().as_uri())
    driver.execute_script("return document.fonts.ready")
    seen = driver.execute_script("""
        const imgs = [...document.images];
        return {window: window.innerWidth, page: document.documentElement.scrollWidth,
                body: document.body.scrollWidth, complete: imgs.every(i => i.complete),
                images: imgs.map(i => [i.alt, i.naturalWidth, i.getBoundingClientRect().right]),
                text: document.body.innerText,
                resources: performance.getEntriesByType('resource').map(e => e.name)};""")
    requests = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            requests.append(message["params"]["request"]["url"])
    seen["requests"] = requests + seen.pop("resources")
    seen["console"] = [(e["level"], e["message"]) for e in driver.get_log("browser")]
    if screenshot is not None:   # the first screen, as the reader sees it on opening the page
        driver.save_screenshot(str(screenshot))
    return seen


def write_tiny_report(root: Path, out: Path) -> dict:
    """The tiny runs trained under `root` and reported on into `out`; returns the report's result."""
    from wgan_cli.report import make_report

    return make_report([str(p) for p in tiny_runs(root)], out)


def main(argv: list[str]) -> int:
    """python tests/report_in_browser.py FOLDER: docs/report-1280.png and -390.png drawn into FOLDER."""
    reason = missing_browser()
    if reason:
        print(f"error: {reason}", file=sys.stderr)
        return 2
    folder = Path(argv[0] if argv else "docs")
    work = Path(tempfile.mkdtemp(prefix="wgan-report-"))
    try:
        write_tiny_report(work / "runs", work / "report")
        driver = open_browser(work / "profile")
        try:
            for width in WIDTHS:
                shot = folder / f"report-{width}.png"
                seen = look(driver, work / "report" / "index.html", width, shot)
                print(f"{shot}: page {seen['page']} px wide in a {seen['window']} px window")
        finally:
            driver.quit()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # the repository's wgan_cli
    sys.exit(main(sys.argv[1:]))
