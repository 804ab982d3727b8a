"""The browser walk: headless Chromium logs in as each role of the test organisation (the admin
at HQ, a region's manager and viewer, a clerk), opens
every page that role may open (the web's permission matrix, ``test_web_permissions.EXPECTED``:
each GET that answers the role 200 with an HTML page, so a new page is walked as soon as it is
in the matrix), in both languages, at a desktop's 1440×900 and in a phone's mobile emulation
(390×844; the same page resized, not reloaded), and fails on

* horizontal overflow (``document.scrollingElement.scrollWidth`` beyond ``innerWidth`` or the
  screen's width: a phone's layout viewport widens with its content),
* a console error,
* an error page (or one without the site's layout: the menu, the reason, a way back),
* a list whose count says there are more rows than shown without a pager.

One browser for the walk, one login per role. Screenshots of each page at both sizes in
zh-Hans: tests/artifacts/web-walk/ (SQLite only: the layout does not depend on the database)."""

from __future__ import annotations

import contextlib
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait
from serverlib import Server, Site
from test_browser import _login, browser  # noqa: F401 (the fixture, used by name)
from test_web_permissions import EXPECTED, _setup, page_names
from webclient import logged_in
from webdata import rating, upload

ROOT = Path(__file__).resolve().parents[3]
SHOTS = ROOT / "tests" / "artifacts" / "web-walk"
ROLES = ["hq-admin", "bj-manager", "bj-viewer", "s001"]  # the admin at HQ, a region's manager
# and viewer, a clerk (staff): a branch's admin adds no page
LANGUAGES = ["zh-hans", "en"]
SHOT_LANGUAGE = "zh-hans"  # screenshots of each page at both sizes in the default language
SIZES = {
    "desktop": {"width": 1440, "height": 900, "deviceScaleFactor": 1, "mobile": False},
    "phone": {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": True},
}
KIOSK = {"web:wall"}  # the hall screen: no menu by design
RATINGS = 60  # today at BJ-001: more than a page of the ratings list (50)


@dataclass
class Page:
    name: str
    path: str


def pages_by_role(server: Server) -> dict[str, list[Page]]:
    """Each role's HTML pages, from the permission matrix: the GETs that answer the role 200
    (an export, a PDF, a stream or a JSON fragment answers 200 too, but is no page to look at:
    each is asked once for its content type, by the first role that may open it)."""
    page_names()  # Django set up, its URL map read
    from django.urls import reverse

    clients = {role: logged_in(server.url, role) for role in ROLES}
    html: dict[str, bool] = {}
    out: dict[str, list[Page]] = {role: [] for role in ROLES}
    for name, (method, args, arg, expected) in sorted(EXPECTED.items()):
        if method != "GET":
            continue
        path = reverse(name, args=args) + arg
        for role in ROLES:
            if expected.get(role) != 200:
                continue
            if name not in html:
                status, _ = clients[role].get(path)
                kind = clients[role].last_headers.get("Content-Type", "")
                html[name] = status == 200 and kind.startswith("text/html")
            if html[name]:
                out[role].append(Page(name, path))
    return out


# what the page looks like, measured in it
MEASURE = """
const root = document.scrollingElement, screen = arguments[0];
const wide = [...document.querySelectorAll('body *')]
  .filter(e => e.getBoundingClientRect().right > screen + 1 && !e.closest('.table-responsive'))
  .slice(0, 3).map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '')
                        + (typeof e.className === 'string' ? '.' + e.className : ''));
const count = document.getElementById('count');
let rows = null;
if (count) {  // the list after the count: its data rows
  const list = [...document.querySelectorAll('table, ul')].find(
    t => count.compareDocumentPosition(t) & Node.DOCUMENT_POSITION_FOLLOWING);
  rows = list ? list.querySelectorAll('tr:has(td), li').length : 0;
}
return {
  scrollWidth: root.scrollWidth, innerWidth: innerWidth, wide: wide,
  count: count ? count.textContent : null, rows: rows,
  pager: !!document.querySelector('#pages #next, #pages #prev'),
  menu: !!document.querySelector('header.top nav'),
  error: !!document.querySelector('.error-page'),
  header: (document.querySelector('header.top') || {offsetHeight: 0}).offsetHeight,
  lang: document.documentElement.lang,
};
"""


def _size(driver: WebDriver, size: str) -> None:
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", SIZES[size])
    driver.execute_cdp_cmd("Emulation.setTouchEmulationEnabled", {"enabled": size == "phone"})


def _errors(driver: WebDriver, allowed_url: str = "") -> list[str]:
    """The console's errors since the last call (a deliberately opened error page's own status
    line, ``allowed_url``, is no error of the page)."""
    out = []
    for entry in driver.get_log("browser"):
        message = str(entry.get("message", ""))
        if entry.get("level") != "SEVERE":
            continue
        own_status = entry.get("source") == "network" and message.startswith(allowed_url + " ")
        if allowed_url and own_status:
            continue
        out.append(message)
    return out


SETTLED = "return document.scrollingElement.scrollWidth <= Math.min(innerWidth, arguments[0])"


def _check(driver: WebDriver, where: str, page: Page, size: str, lang: str) -> list[str]:
    # charts follow their box after a resize, a frame or a few later (on a loaded machine,
    # later still): a page that overflows gets a bounded while to settle before it counts
    with contextlib.suppress(TimeoutException):
        WebDriverWait(driver, 5, poll_frequency=0.1).until(
            lambda d: d.execute_script(SETTLED, SIZES[size]["width"])
        )
    m: dict[str, Any] = driver.execute_script(MEASURE, SIZES[size]["width"])
    problems = []
    if m["lang"] != lang:
        problems.append(f"{where}: the page is in {m['lang']!r}")
    # a phone's layout viewport widens to the content (innerWidth too): measured against the
    # screen's width as well
    screen = min(m["innerWidth"], SIZES[size]["width"])
    if m["scrollWidth"] > screen:
        problems.append(f"{where}: {m['scrollWidth']} px wide on {screen}: {m['wide']}")
    if page.name not in KIOSK and not m["menu"]:
        problems.append(f"{where}: no site layout (menu)")
    if m["error"]:
        problems.append(f"{where}: an error page: {driver.find_element(By.TAG_NAME, 'h1').text}")
    if m["count"] is not None:
        n = int(re.sub(r"[^\d]", " ", m["count"]).split()[0])
        if n > m["rows"] and not m["pager"]:
            problems.append(f"{where}: {n} rows, {m['rows']} shown, no pager")
    if size == "phone" and m["header"] > 844 * 0.1:
        problems.append(f"{where}: the header takes {m['header']} px of the phone's 844")
    return problems


def _shot(driver: WebDriver, name: str) -> None:
    driver.save_screenshot(str(SHOTS / f"{name}.png"))


def _walk(driver: WebDriver, base: str, role: str, pages: list[Page]) -> list[str]:
    problems: list[str] = []
    _login(driver, base, role)
    for lang in LANGUAGES:
        driver.add_cookie({"name": "django_language", "value": lang})
        for page in pages:
            _size(driver, "desktop")
            driver.get(base.rstrip("/") + page.path)
            for size in SIZES:
                _size(driver, size)
                where = f"{role} {lang} {size} {page.path}"
                problems += _check(driver, where, page, size, lang)
                problems += [f"{where}: console: {e}" for e in _errors(driver)]
                if lang == SHOT_LANGUAGE:
                    _shot(driver, f"{role}-{size}-{page.name.split(':')[-1]}")
        # an unknown address: the error page in the site's layout, with the reason and a way home
        _size(driver, "phone")
        missing = base + "no-such-page/"
        driver.get(missing)
        m = driver.execute_script(MEASURE, SIZES["phone"]["width"])
        if not (m["menu"] and m["error"] and driver.find_elements(By.ID, "home")):
            problems.append(f"{role} {lang}: the 404 page lacks the site's layout")
        if m["scrollWidth"] > SIZES["phone"]["width"]:
            problems.append(f"{role} {lang}: the 404 page is {m['scrollWidth']} px wide")
        problems += [f"{role} {lang} 404: console: {e}" for e in _errors(driver, missing)]
        if lang == SHOT_LANGUAGE:
            _shot(driver, f"{role}-phone-404")
    driver.delete_cookie("django_language")
    return problems


@pytest.mark.parametrize("site", ["sqlite"], indirect=True)
def test_every_role_walks_every_page(site: Site, server: Server, browser: WebDriver) -> None:  # noqa: F811
    _setup(server, site)  # a rule, its alert, a case and an appeal (the matrix's ids 1)
    upload(server.url, site.keys["BJ-001"],
           ratings=[rating("K2", i, 1 + i % 5, staff="S002", ago_s=30 * i)
                    for i in range(1, RATINGS + 1)])  # fmt: skip
    shutil.rmtree(SHOTS, ignore_errors=True)  # this run's screenshots only
    SHOTS.mkdir(parents=True)
    problems: list[str] = []
    pages = pages_by_role(server)
    assert len(pages["hq-admin"]) > 15 and pages["s001"]  # the matrix was read
    for role in ROLES:
        problems += _walk(browser, server.url, role, pages[role])
    _size(browser, "desktop")
    assert not problems, "\n".join(problems)
