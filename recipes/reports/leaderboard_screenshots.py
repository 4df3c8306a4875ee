"""Screenshots of the leaderboard page as a reader first sees it, at 1400 and 800 pixels wide.

    python recipes/reports/leaderboard_screenshots.py                  # leaderboards/index.html
    python recipes/reports/leaderboard_screenshots.py --page my-board/index.html --out my-board/figures

Opens the page from the file system in headless Chromium (Debian's ``chromium`` and
``chromium-driver``, or ``LCB_CHROMIUM`` / ``LCB_CHROMEDRIVER``; Selenium comes with the test extra)
with a viewport of exactly ``WIDTH×--height`` CSS pixels at device-pixel ratio 1, and saves what is
visible without scrolling as ``leaderboard-<width>.png``. It also prints, per width, whether the page
scrolls sideways and the widest table's own width.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from lightning_checkerboard._argparse import OneLineParser
from lightning_checkerboard._io import atomic_write_bytes
from lightning_checkerboard.cli import UsageError, positive_int, run_cli

WIDTHS = (1400, 800)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="recipes/reports/leaderboard_screenshots.py", description=__doc__.split("\n\n")[0],
                           formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--page", type=Path, default=Path("leaderboards/index.html"), help="the page to open")
    parser.add_argument("--out", type=Path, default=Path("leaderboards/figures"), help="folder for the PNGs")
    parser.add_argument("--height", type=positive_int, default=900, help="viewport height in CSS pixels")
    return parser


def _driver():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary = os.environ.get("LCB_CHROMIUM", "/usr/bin/chromium")
    driver_path = os.environ.get("LCB_CHROMEDRIVER", "/usr/bin/chromedriver")
    if not (os.path.exists(binary) and os.path.exists(driver_path)):
        raise UsageError(f"needs Chromium and its driver ({binary}, {driver_path}): "
                         "apt-get install -y chromium chromium-driver, or set LCB_CHROMIUM and LCB_CHROMEDRIVER")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--force-device-scale-factor=1",
                 "--disable-dev-shm-usage", f"--user-data-dir={tempfile.mkdtemp(prefix='lcb-chromium-')}"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(driver_path), options=options)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.page.is_file():
        raise UsageError(f"--page {args.page}: no such file (build the leaderboard first)")
    driver = _driver()
    try:
        for width in WIDTHS:
            driver.set_window_size(width, args.height)
            inner = driver.execute_script("return [window.innerWidth, window.innerHeight]")
            driver.set_window_size(2 * width - inner[0], 2 * args.height - inner[1])
            driver.get(args.page.resolve().as_uri())
            page_width, widest = driver.execute_script(
                "return [document.documentElement.scrollWidth, Math.max(0, ...Array.from("
                "document.querySelectorAll('table')).map(t => t.scrollWidth))]")
            path = args.out / f"leaderboard-{width}.png"
            atomic_write_bytes(path, driver.get_screenshot_as_png())
            scroll = "scrolls sideways" if page_width > width else "no sideways scroll"
            print(f"{path}: {width}×{args.height}, {scroll} (page {page_width} px), widest table {widest} px")
    finally:
        driver.quit()
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main, sys.argv[1:]))
