"""The hall wall (web/wall.py): the kiosk fills a 1920×1080 and a 3840×2160 screen without
scrolling, menu or links, in large type, its tiles grouped by branch; the first paint shows each
window's last rating, today's figures (the summary API's for today) and today's alerts (at most
``TICKER``, no digests); a rating uploaded through the ingest API reaches its tile with its time
and the staff member's name and updates today's figures; an offline keypad's tile shows when it
was last seen; after a server restart the wall says it is reconnecting, reconnects by itself
(no reload) and shows the next rating."""

from __future__ import annotations

import html
import json
import re
import time
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait
from serverlib import Server, Site, call
from test_browser import _login, _shot, browser  # noqa: F401 (the module's Chromium fixture)
from webclient import logged_in
from webdata import rating, upload

TICKER = 8  # web/wall.py
CLOCK = re.compile(r"^\d\d:\d\d:\d\d$")  # a time of today, as the wall shows it


def _tile(page: str, code: str) -> str:
    start = page.index(f'id="tile-{code}"')
    return page[start : page.index("</div>", start)]


def _text(fragment: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", fragment))


def _summary_today(site: Site, server: Server, node: str, zone: str) -> dict[str, Any]:
    tz = ZoneInfo(zone)
    midnight = datetime.now(tz).replace(hour=0, minute=0, second=0, microsecond=0)
    since, until = midnight.isoformat(), (midnight + timedelta(days=1)).isoformat()
    status, body = call(server.url, f"/api/v1/summary?node={node}&since={since.replace('+', '%2B')}"
                        f"&until={until.replace('+', '%2B')}", site.tokens["hq-admin"])  # fmt: skip
    assert status == 200, body
    assert isinstance(body, dict)
    return body


def _shown(summary: dict[str, Any]) -> dict[str, str]:
    """The summary's figures as the pages format them (web/templatetags/web.py)."""

    def pct(x: float | None) -> str:
        return "–" if x is None else f"{x * 100:.1f}%"

    index = summary["index"]
    return {"n": str(summary["n"]), "index": "–" if index is None else f"{index:.1f}",
            "csat": pct(summary["csat"]), "response": pct(summary["response_rate"])}  # fmt: skip


def _kpis_of_html(fragment: str) -> dict[str, str]:
    out = {}
    for key in ("n", "index", "csat", "response"):
        m = re.search(rf'id="kpi-today-{key}"[^>]*>.*?<b>(.*?)</b>', fragment, re.S)
        assert m, key
        out[key] = m.group(1).strip()
    return out


def test_first_paint_today_and_the_ticker(site: Site, server: Server) -> None:
    admin = logged_in(server.url, "hq-admin")
    for i in range(TICKER + 3):  # each rule raises its own alert for the same rating
        status, _ = admin.post("/rules/", {"name": f"差评{i}", "node": "BJ", "kind": "low_rating",
                                           "level": "2"})  # fmt: skip
        assert status == 302
    manager = logged_in(server.url, "bj-manager")
    # a late rating (older than the rules' 60 minutes): digest alerts, not on the wall
    upload(server.url, site.keys["BJ-001"], ratings=[rating("K1", 1, 1, ago_s=2 * 3600)])
    page = manager.get("/live/BJ/")[1].decode()
    assert 'class="alert' not in page
    upload(server.url, site.keys["BJ-001"],
           ratings=[rating("K1", 2, 5, staff="S002", ago_s=30),
                    rating("K2", 3, 2, staff="S001", ago_s=20)])  # fmt: skip
    status, raw = manager.get("/live/BJ/")
    page = raw.decode()
    assert status == 200
    # the first paint: each window's last rating with its time and staff member
    w1, w2 = _tile(page, "BJ-001-W1"), _tile(page, "BJ-001-W2")
    assert "李华" in w1 and 'class="score s5">5<' in w1
    assert "王小明" in w2 and 'class="score s2">2<' in w2
    clock = re.search(r"<time [^>]*>([^<]*)</time>", w1)
    assert clock and CLOCK.match(clock.group(1))
    assert "S001" not in _text(page) and "S002" not in _text(page)  # names, never ids
    # grouped by branch at a region: each "1号窗口" under its branch's heading
    assert page.count('class="branch-name"') == 2
    assert page.index("朝阳支行</h2>") < page.index('id="tile-BJ-001-W1"')
    assert page.index("海淀支行</h2>") < page.index('id="tile-BJ-002-W1"')
    # the ticker: today's alerts, newest first, at most TICKER (digests left out)
    ids = [int(x) for x in re.findall(r'<li class="alert open" data-id="(\d+)"', page)]
    assert len(ids) == TICKER and ids == sorted(ids, reverse=True)
    # today's figures are the summary API's for today
    zone = re.search(r'data-time-zone="([^"]+)"', page)
    assert zone
    expected = _shown(_summary_today(site, server, "BJ", zone.group(1)))
    assert _kpis_of_html(page) == expected
    status, raw = manager.get("/live/BJ/state")
    state = json.loads(raw)
    assert status == 200 and isinstance(state, dict)
    assert _kpis_of_html(state["kpis"]) == expected
    assert state["ticker"].count('class="alert') == TICKER
    # the manager's page keeps the menu; the kiosk has no menu and no link at all
    assert 'id="logout"' in page and "<nav>" in page
    for path in ("/wall/BJ/", "/live/BJ/?kiosk=1"):
        kiosk = manager.get(path)[1].decode()
        assert "<nav>" not in kiosk and "<a " not in kiosk and 'id="logout"' not in kiosk
        assert _kpis_of_html(kiosk) == expected
    # English
    manager.headers = {"Accept-Language": "en"}
    text = _text(manager.get("/wall/BJ/")[1].decode())
    assert "Ratings today" in text and "Today's alerts" in text and "今日" not in text


def test_offline_tile_shows_last_seen(site: Site, server: Server) -> None:
    seen = datetime.now().astimezone() - timedelta(minutes=10)
    upload(server.url, site.keys["BJ-001"], devices=[
        {"serial": "K1", "connected": False, "state": "idle", "staff_id": "S001",
         "updated_at_ms": int(seen.timestamp() * 1000)}])  # fmt: skip
    page = logged_in(server.url, "bj-viewer").get("/wall/BJ-001/")[1].decode()
    tile = _tile(page, "BJ-001-W1")
    assert 'class="tile offline" id="tile-BJ-001-W1"' in page and "离线" in tile
    local = seen.astimezone(ZoneInfo(re.findall(r'data-time-zone="([^"]+)"', page)[0]))
    if local.date() == datetime.now(local.tzinfo).date():
        assert "最后在线 <time" in tile and f"{local:%H:%M:%S}</time>" in tile
    else:  # just after midnight: the date and the minute
        assert f"{local:%m-%d %H:%M}</time>" in tile


# -- in the browser ------------------------------------------------------------------------------
def _viewport(driver: WebDriver, width: int, height: int) -> None:
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": width, "height": height, "deviceScaleFactor": 1,
                            "mobile": False})  # fmt: skip


def _until(driver: WebDriver, test: Any, timeout: float = 15) -> None:
    """Wait for ``test``; an element replaced meanwhile (the wall re-renders) is looked up again."""
    WebDriverWait(driver, timeout, ignored_exceptions=(StaleElementReferenceException,)).until(test)


def _on(driver: WebDriver, code: str) -> str:
    """The text of a window's tile (looked up each time: a refresh renders the tiles anew)."""
    return str(driver.find_element(By.ID, f"tile-{code}").text)


def _wait_live(driver: WebDriver) -> None:
    WebDriverWait(driver, 15).until(
        lambda d: d.find_element(By.ID, "live-status").get_attribute("data-state") == "live"
    )


FITS = """
const doc = document.documentElement;
const inside = [...document.querySelectorAll('.tile, .kpi, #latest, #open-alerts')].every((e) => {
  const r = e.getBoundingClientRect();
  return r.right <= innerWidth + 1 && (e.id ? r.top : r.bottom) <= innerHeight + 1;
});
return {scroll: doc.scrollHeight > innerHeight || doc.scrollWidth > innerWidth
          || document.body.scrollHeight > innerHeight || document.body.scrollWidth > innerWidth,
        inside: inside, links: document.querySelectorAll('a, nav, #logout').length,
        kpi: parseFloat(getComputedStyle(document.querySelector('.kpi b')).fontSize),
        name: parseFloat(getComputedStyle(document.querySelector('.tile h3')).fontSize),
        heads: [...document.querySelectorAll('.branch-name')].map((h) => h.textContent)};
"""


@pytest.mark.parametrize("site", ["sqlite"], indirect=True)
def test_the_kiosk_fits_the_screen(site: Site, server: Server, browser: WebDriver) -> None:  # noqa: F811
    upload(server.url, site.keys["BJ-001"], ratings=[rating("K1", 1, 4, ago_s=5)])
    _login(browser, server.url, "hq-admin")
    try:
        sizes = {}
        for width, height in ((1920, 1080), (3840, 2160)):
            _viewport(browser, width, height)
            browser.get(server.url + "wall/HQ/")
            _wait_live(browser)
            got = browser.execute_script(FITS)
            _shot(browser, f"wall-{width}x{height}")
            assert not got["scroll"] and got["inside"], (width, got)
            assert got["links"] == 0
            assert got["heads"] == ["朝阳支行", "海淀支行", "浦东支行"]
            sizes[width] = (got["kpi"], got["name"])
        # large type that grows with the screen
        assert sizes[1920][0] >= 40 and sizes[1920][1] >= 20
        assert sizes[3840][0] >= 1.8 * sizes[1920][0]
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


@pytest.mark.parametrize("site", ["sqlite"], indirect=True)
def test_ratings_reach_the_wall_which_survives_a_restart(
    site: Site,
    server: Server,
    browser: WebDriver,  # noqa: F811
) -> None:
    _login(browser, server.url, "bj-manager")
    _viewport(browser, 1920, 1080)
    try:
        browser.get(server.url + "wall/BJ-001/")
        _wait_live(browser)
        zone = browser.find_element(By.ID, "wall-page").get_attribute("data-time-zone") or ""
        assert browser.find_element(By.CSS_SELECTOR, "#kpi-today-n b").text == "0"
        upload(server.url, site.keys["BJ-001"], ratings=[rating("K2", 1, 2, staff="S002", ago_s=1)])
        _until(browser, lambda d: "李华" in _on(d, "BJ-001-W2") and "2 ·" in _on(d, "BJ-001-W2"))
        pushed = browser.find_element(By.CSS_SELECTOR, "#tile-BJ-001-W2 .last time").text
        assert CLOCK.match(pushed)
        expected = _shown(_summary_today(site, server, "BJ-001", zone))
        assert expected["n"] == "1"

        def kpis(d: WebDriver) -> dict[str, str]:
            return {k: d.find_element(By.CSS_SELECTOR, f"#kpi-today-{k} b").text
                    for k in ("n", "index", "csat", "response")}  # fmt: skip

        _until(browser, lambda d: kpis(d) == expected)
        # the pushed row's time is the first paint's
        page = logged_in(server.url, "bj-manager").get("/wall/BJ-001/")[1].decode()
        assert f">{pushed}</time>" in _tile(page, "BJ-001-W2")
        # a keypad gone offline: its tile says when it was last seen
        gone = int(time.time() * 1000) - 5000
        upload(server.url, site.keys["BJ-001"], devices=[
            {"serial": "K1", "connected": False, "state": "idle", "staff_id": "S001",
             "updated_at_ms": gone}])  # fmt: skip
        _until(browser, lambda d: "最后在线" in _on(d, "BJ-001-W1"))
        w1 = browser.find_element(By.ID, "tile-BJ-001-W1")
        assert "offline" in (w1.get_attribute("class") or "") and "离线" in w1.text
        assert "王小明" in w1.text
        assert CLOCK.match(w1.find_element(By.CSS_SELECTOR, ".seen time").text)
        # the server restarts: the wall says so, reconnects without reloading, shows the next
        browser.execute_script("window.stayed = 1")
        server.restart()
        link = browser.find_element(By.ID, "live-status")
        _until(
            browser,
            lambda d: (
                int(link.get_attribute("data-drops") or 0) >= 1
                and link.get_attribute("data-state") == "live"
            ),
        )
        assert browser.execute_script("return window.stayed") == 1
        upload(server.url, site.keys["BJ-001"], ratings=[rating("K2", 2, 5, staff="S001", ago_s=1)])
        _until(browser, lambda d: "王小明" in _on(d, "BJ-001-W2") and "5 ·" in _on(d, "BJ-001-W2"))
        _until(browser, lambda d: d.find_element(By.CSS_SELECTOR, "#kpi-today-n b").text == "2")
        errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"
                  and "/events" not in e["message"] and "/state" not in e["message"]]  # fmt: skip
        assert not errors
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
