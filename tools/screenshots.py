"""The README's screenshots of the managers' web, from the demo organisation (``ratepad server
demo``'s): 30 days of ratings uploaded through the ingest API (one window clearly worse than its
branch, so the overview has something to point at), the demo's simulated keypads live for a
few seconds (the wall's tiles), then headless Chromium takes

* ``overview.png``: the region manager's overview (1440×900),
* ``report.png``: a branch's report (1440 wide, the whole page),
* ``wall.png``: the hall screen (1920×1080, halved),
* ``phone.png``: the manager's overview on a phone (390×844, mobile emulation),

into ``docs/screenshots/`` as small PNGs (palette-quantized, each under ``LIMIT`` bytes).

    python tools/screenshots.py [--out DIR]

Needs chromium + chromedriver (``make setup``); exit 2 with one line if they are missing.
"""

from __future__ import annotations

import argparse
import base64
import io
import os
import random
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
LIMIT = 300_000
DAYS = 30
LEVELS = [0, 40, 60, 80, 100]


def _history(keys: dict[str, str], url: str) -> None:
    """Ratings of the past ``DAYS`` days and of today at every demo window; DEMO-001-W3 (张伟)
    worse than the rest."""
    from serverlib import call  # tests/server: the API helper of the server's tests

    from ratepad_server import demo

    rng = random.Random(7)
    now = time.time()
    midnight = now - now % 86400
    for branch, key in keys.items():
        ratings: list[dict[str, Any]] = []
        staff = [s for s in demo.STAFF if s[2] == branch]
        for w in range(1, demo.WINDOWS + 1):
            serial, sid = f"{branch}-K{w}", staff[(w - 1) % len(staff)][0]
            worse = branch == "DEMO-001" and w == 3
            weights = [25, 20, 20, 20, 15] if worse else [3, 4, 10, 33, 50]
            seq = 0
            for day in range(DAYS, -1, -1):  # ending today
                for _ in range(rng.randint(20, 45)):
                    seq += 1
                    if day:  # opening hours (the server's pages show UTC)
                        at = midnight - day * 86400 + rng.uniform(8, 17.5) * 3600
                    else:  # today: the hours before now
                        at = now - rng.uniform(0.05, 6) * 3600
                    score = rng.choices(range(1, 6), weights)[0]
                    ratings.append({
                        # boot 7: not the journal of the simulated keypads started later
                        "serial": serial, "journal_seq": seq, "boot_id": 7, "uptime_ms": seq,
                        "time_ms": int(at * 1000), "time_exact": True, "score": score,
                        "key_count": 5, "level_value": LEVELS[score - 1], "staff_id": sid,
                        "prompt_id": 0, "flags": 0,
                    })  # fmt: skip
        for i in range(0, len(ratings), 2000):
            status, answer = call(
                url, "/api/v1/ingest/batch", key, {"ratings": ratings[i : i + 2000]}
            )
            if status != 200:
                raise SystemExit(f"screenshots: the upload failed ({status}): {answer}")


def _browser() -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium is None or driver is None:
        print("screenshots: chromium and chromedriver are needed (make setup)", file=sys.stderr)
        raise SystemExit(2)
    options = Options()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--hide-scrollbars", "--lang=zh-CN"):  # fmt: skip
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(driver), options=options)


def _save(png: bytes, path: Path) -> None:
    """A 256-colour PNG (the pages are flat colours and text: it stays sharp), smaller if need
    be, under ``LIMIT``."""
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    while True:
        out = io.BytesIO()
        image.quantize(256, dither=Image.Dither.NONE).save(out, "PNG", optimize=True)
        if out.tell() <= LIMIT or image.width < 400:
            break
        image = image.resize(
            (image.width * 4 // 5, image.height * 4 // 5), Image.Resampling.LANCZOS
        )
    path.write_bytes(out.getvalue())
    print(f"{path}: {image.width}×{image.height}, {out.tell() // 1000} kB")


def _shoot(driver: Any, url: str, path: Path, width: int, height: int, *, mobile: bool = False,
           scale: float = 1, full: bool = False, wait_for: str = "") -> None:  # fmt: skip
    from selenium.webdriver.support.ui import WebDriverWait

    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile})  # fmt: skip
    driver.get(url)
    if wait_for:
        WebDriverWait(driver, 15).until(lambda d: d.execute_script(f"return !!({wait_for})"))
    time.sleep(1)  # charts drawn, fonts settled
    shown = height
    if full:
        shown = min(int(driver.execute_script("return document.scrollingElement.scrollHeight")),
                    4000)  # fmt: skip
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
        "captureBeyondViewport": full, "clip": {"x": 0, "y": 0, "width": width, "height": shown,
                                                "scale": scale}})  # fmt: skip
    _save(base64.b64decode(shot["data"]), path)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--lang", choices=["en", "zh-hans"], default="en",
                        help="the pages' language (default: en, the README's)")  # fmt: skip
    args = parser.parse_args(argv)
    sys.path[:0] = [str(ROOT / "server"), str(ROOT / "host"), str(ROOT / "protocol"),
                    str(ROOT / "tests" / "server")]  # fmt: skip
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    from ratepad_server import demo

    args.out = args.out.resolve()  # (the script works in a temporary folder)
    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="ratepad-screenshots-"))
    os.environ["RATEPAD_SECRET_KEY"] = secrets.token_urlsafe(40)
    db = f"sqlite:///{work / 'server.sqlite3'}"
    proc = driver = None
    branches: list[Any] = []
    os.chdir(work)  # the server's files stay in the temporary folder
    try:
        keys = demo._prepare(work, db)
        proc = demo._spawn_server(work, db, "127.0.0.1:0", dict(os.environ))
        url = demo._server_url(proc, work)
        _history(keys, url)
        import ratepad.sim

        ratepad.sim.reset()
        branches = [demo._Branch(code, keys[code], url, work, 7 + i)
                    for i, code in enumerate(demo.BRANCHES)]  # fmt: skip
        for b in branches:
            b.start()
        driver = _browser()
        driver.get(url + "login/")
        driver.find_element(By.ID, "id_username").send_keys("manager")
        driver.find_element(By.ID, "id_password").send_keys("demo-manager")
        driver.find_element(By.ID, "login").click()
        WebDriverWait(driver, 15).until(ec.presence_of_element_located((By.ID, "logout")))
        driver.add_cookie({"name": "django_language", "value": args.lang})
        time.sleep(15)  # the keypads come up, log in and take their first ratings
        canvas = "document.querySelector('#chart-trend canvas')"
        _shoot(driver, url, args.out / "overview.png", 1440, 900, wait_for=canvas)
        _shoot(
            driver,
            url + "report/DEMO-001/",
            args.out / "report.png",
            1440,
            900,
            full=True,
            scale=0.75,
            wait_for="document.querySelector('#chart-funnel canvas')",
        )
        _shoot(
            driver,
            url + "wall/DEMO/",
            args.out / "wall.png",
            1920,
            1080,
            scale=0.5,
            wait_for="document.getElementById('live-status').dataset.state === 'live'",
        )
        _shoot(
            driver, url, args.out / "phone.png", 390, 844, mobile=True, full=True, wait_for=canvas
        )
        return 0
    finally:
        if driver is not None:
            driver.quit()
        for b in branches:
            b.stop()
        if proc is not None:
            demo._stop_server(proc)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
