"""The overview home and the significance badges: a window rated mostly 1–2 beside a window of
5s is marked significantly low in the branch report's tables and listed under the funnel, and
appears (with its staff member) in the managers' attention list; the good window gets no badge;
a branch rated better today than yesterday is significantly improved (its row, HQ's card);
a clerk's home shows their own figures only; a viewer sees no action links; staff efficiency is
shown above the branch level with its definition. In headless Chromium, in zh-Hans and English,
at 1440×900 and 390×844, the overview without horizontal overflow (screenshots in
build/web-screenshots/overview-*.png)."""

from __future__ import annotations

import re

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait
from serverlib import Server, Site
from test_browser import _login, _shot, browser  # noqa: F401 (the module's Chromium fixture)
from webclient import logged_in
from webdata import rating, upload

BAD = [1] * 45 + [2] * 10 + [4] * 5  # 60 ratings at BJ-001-W1 (keypad K1), by S002
GOOD = [5] * 50 + [4] * 10 + [1, 2]  # 62 ratings at BJ-001-W2 (keypad K2), by S001


def _seed(site: Site, server: Server) -> None:
    upload(server.url, site.keys["BJ-001"], ratings=[
        *(rating("K1", i, s, staff="S002", ago_s=30 + i) for i, s in enumerate(BAD, 1)),
        *(rating("K2", i, s, staff="S001", ago_s=30 + i) for i, s in enumerate(GOOD, 1)),
    ])  # fmt: skip


def _row(html: str, row_id: str) -> str:
    match = re.search(rf'<tr[^>]*id="{row_id}".*?</tr>', html, re.S)
    assert match, row_id
    return match.group(0)


def _table_row(html: str, table: str, code: str) -> str:
    body = html[html.index(f'id="{table}"') :]
    body = body[: body.index("</table>")]
    match = re.search(rf"<tr[^>]*>(?:(?!</tr>).)*>{code}</a>.*?</tr>", body, re.S)
    assert match, (table, code)
    return match.group(0)


def test_badges_attention_and_the_clerks_home(site: Site, server: Server) -> None:
    _seed(site, server)
    # the clerk: their own figures (S001's 62 ratings), no attention list, what they may appeal
    clerk = logged_in(server.url, "s001")
    status, page = clerk.get("/")
    mine = page.decode()
    assert status == 200
    card = mine[mine.index('id="card-today"') :]
    assert re.search(r'class="kpi-n">62<', card)
    assert "attention" not in mine and "S002" not in mine and "BJ-001-W1" not in mine
    assert re.search(r'id="appealable">[^<]*\b2\b', mine)  # the 1 and the 2
    assert 'id="appeal-link"' in mine and "/ratings/BJ-001/?since=" in mine
    form = {"serial": "K2", "journal_seq": "61", "reason": "按错了 pressed by mistake"}
    assert clerk.post("/appeals/", form)[0] == 302
    assert re.search(r'id="appealable">[^<]*\b1\b', clerk.get("/")[1].decode())
    manager = logged_in(server.url, "bj-manager")
    status, page = manager.get("/report/BJ-001/?period=today")
    html = page.decode()
    assert status == 200
    bad, good = _table_row(html, "children", "BJ-001-W1"), _table_row(html, "children", "BJ-001-W2")
    assert "sigbadge low" in bad and "显著偏低" in bad
    assert "sigbadge" not in good  # the quiet window: no badge
    assert "sigbadge low" in _table_row(html, "staff", "S002")
    assert "sigbadge" not in _table_row(html, "staff", "S001")
    assert "显著偏低" in _row(html, "outlier-BJ-001-W1")  # listed under the funnel
    ranking = html[html.index('id="ranking"') :]
    ranking = ranking[: ranking.index("</table>")]
    assert ranking.count("sigbadge low") == 1  # the ranking of the windows: W1 alone
    # the overview: the window and its staff member need attention, with links to their report
    status, page = manager.get("/")
    home = page.decode()
    assert status == 200
    assert "/report/BJ-001/?period=this_week&window=BJ-001-W1" in _row(home, "below-BJ-001-W1")
    assert "below-S002" in home and "below-BJ-001-W2" not in home and "below-S001" not in home
    assert 'id="card-today"' in home and ">122<" in home  # today's n
    assert 'href="/appeals/?state=pending"' in home  # a manager's action link
    viewer = logged_in(server.url, "bj-viewer")
    status, page = viewer.get("/")
    assert status == 200 and "below-BJ-001-W1" in page.decode()
    assert "/appeals/?state=pending" not in page.decode()  # read-only: no action links
    assert "/alerts/?overdue=1" not in page.decode()
    # a branch better today than yesterday: "significantly improved", in its region's table
    # and on HQ's overview card (today against yesterday)
    upload(server.url, site.keys["SH-001"], ratings=[
        *(rating("K4", i, 2, staff="S101", ago_s=86_400 + i) for i in range(1, 41)),
        *(rating("K4", 40 + i, 5, staff="S101", ago_s=30 + i) for i in range(1, 41)),
    ])  # fmt: skip
    admin = logged_in(server.url, "hq-admin")
    region = admin.get("/report/SH/?period=today")[1].decode()
    assert "显著改善" in _table_row(region, "children", "SH-001")
    home = admin.get("/")[1].decode()
    assert re.search(r'class="change up significant" id="change-today-previous"', home)
    # staff efficiency above the branch: rows, a total and the definition one click away
    status, page = manager.get("/report/BJ/?period=today")
    assert status == 200 and 'id="efficiency-definition"' in page.decode()
    assert 'id="efficiency-total"' in page.decode()


@pytest.mark.parametrize("site", ["sqlite"], indirect=True)
def test_the_overview_in_the_browser(
    site: Site,
    server: Server,
    browser: WebDriver,  # noqa: F811
) -> None:
    _seed(site, server)
    words = {"zh-hans": ("显著偏低", "需要关注"), "en": ("significantly low", "Needs attention")}
    for lang, (low, attention) in words.items():
        _login(browser, server.url, "bj-manager")
        browser.add_cookie({"name": "django_language", "value": lang})
        for width, height in ((1440, 900), (390, 844)):
            browser.set_window_size(width, height)
            for path in ("", "report/BJ-001/?period=today"):
                browser.get(server.url + path)
                WebDriverWait(browser, 10).until(
                    ec.presence_of_element_located((By.TAG_NAME, "h1"))
                )
                body = browser.find_element(By.TAG_NAME, "body").text
                assert low in body, (lang, width, path)
                if not path:
                    entry = browser.find_element(By.ID, "below-BJ-001-W1").text
                    assert low in entry and attention in body, (lang, width)
                    assert browser.find_elements(By.CSS_SELECTOR, "#chart-trend canvas")
                    overflow = browser.execute_script(
                        "return [document.documentElement.scrollWidth, window.innerWidth]"
                    )
                    assert overflow[0] <= overflow[1], (lang, width, overflow)
                    _shot(browser, f"overview-{lang}-{width}")
                errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
                assert not errors, (lang, width, path, errors)
