"""The 好差评 loop in a real browser (headless Chromium, the page in zh-Hans): an admin keeps the
holiday calendar; a manager walks a bad rating's case through verify → rectify → answer →
close, and finds an overdue case escalated to them; a clerk appeals a low rating (no appeal box
on a 5) and reads the manager's decision note on their own appeals page."""

from __future__ import annotations

import subprocess
import sys

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select, WebDriverWait
from serverlib import Server, Site, server_env
from test_browser import _assert_page_ok, _login, _shot, browser
from webdata import rating, upload

__all__ = ["browser"]  # the module's Chromium, shared with test_browser


def _open(driver: WebDriver, url: str) -> None:
    driver.get(url)
    WebDriverWait(driver, 30).until(ec.presence_of_element_located((By.TAG_NAME, "h1")))
    _assert_page_ok(driver, url)


def _text(driver: WebDriver, element_id: str) -> str:
    return str(driver.find_element(By.ID, element_id).text)


def _record(driver: WebDriver, note: str, *radios: str) -> None:
    """Fill the step form (radio buttons, then the note) and record the step."""
    before = driver.find_element(By.ID, "case-state").get_attribute("data-state")
    for radio in radios:
        driver.find_element(By.ID, radio).click()
    driver.find_element(By.ID, "step-note").send_keys(note)
    button = driver.find_element(By.ID, "do-step")
    button.click()
    WebDriverWait(driver, 30).until(ec.staleness_of(button))  # the next page came
    WebDriverWait(driver, 30).until(ec.presence_of_element_located((By.ID, "case-state")))
    assert driver.find_element(By.ID, "case-state").get_attribute("data-state") != before


@pytest.mark.parametrize("site", ["sqlite"], indirect=True)
def test_the_loop_walked_as_admin_manager_and_clerk(
    site: Site, server: Server, browser: WebDriver
) -> None:
    base = server.url.rstrip("/")
    # admin: a holiday in the calendar, by hand
    _login(browser, server.url, "hq-admin")
    browser.find_element(By.ID, "menu-admin").click()  # the admin's pages are in a drop-down
    WebDriverWait(browser, 10).until(ec.element_to_be_clickable((By.ID, "menu-holidays"))).click()
    WebDriverWait(browser, 30).until(ec.presence_of_element_located((By.ID, "holiday-form")))
    browser.execute_script("document.getElementById('holiday-day').value = '2027-01-01'")
    browser.find_element(By.ID, "holiday-name").send_keys("元旦")
    browser.find_element(By.ID, "holiday-save").click()
    WebDriverWait(browser, 30).until(ec.text_to_be_present_in_element((By.ID, "holidays"),
                                                                      "2027-01-01"))  # fmt: skip
    assert "元旦" in _text(browser, "holidays") and "节假日" in _text(browser, "holidays")
    _shot(browser, "loop-holidays")
    _open(browser, base + "/cases/rules/")
    assert browser.find_element(By.ID, "policy-case_days").get_attribute("value") == "5"

    key = site.keys["BJ-001"]
    upload(server.url, key, ratings=[rating("K1", 1, 1), rating("K1", 2, 5), rating("K1", 3, 2)])
    # manager: the 1's case, step by step
    _login(browser, server.url, "bj-manager")
    browser.find_element(By.ID, "menu-cases").click()
    WebDriverWait(browser, 30).until(ec.presence_of_element_located((By.ID, "cases")))
    rows = browser.find_elements(By.CSS_SELECTOR, "#cases tr.verify td:first-child a")
    assert len(rows) == 2  # the 1 and the 2, not the 5
    ids = sorted(int(a.text) for a in rows)
    _open(browser, f"{base}/cases/{ids[0]}/")
    assert "王小明" in _text(browser, "case-rating")
    _record(browser, "已调取录像 属实 the video shows it", "genuine-yes")
    _record(browser, "已更换排队指示牌 queue sign replaced")
    Select(browser.find_element(By.ID, "channel")).select_by_value("phone")
    _record(browser, "已电话致歉 apologised by phone", "contacted-yes")
    _record(browser, "办结 done")
    assert _text(browser, "case-state") == "已办结"
    steps = _text(browser, "steps")
    assert steps.count("bj-manager") == 4 and "apologised by phone" in steps and "电话" in steps
    _shot(browser, "loop-case-closed")
    # the 2's case overdue: the worker's round escalates it to BJ's managers
    site.sql(f"UPDATE casework_case SET deadline = '2026-01-05' WHERE id = {ids[1]}")
    out = subprocess.run(
        [sys.executable, "-m", "ratepad_server", "sendalerts", "--once", "--db", site.db],
        capture_output=True, text=True, env=server_env(), cwd=site.dir, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    _open(browser, base + "/notifications/")
    assert f"差评工单 {ids[1]} 已逾期" in _text(browser, "notes")
    _open(browser, f"{base}/cases/?state=escalated")
    browser.find_element(By.LINK_TEXT, str(ids[1])).click()
    WebDriverWait(browser, 30).until(ec.presence_of_element_located((By.ID, "case-escalated")))
    assert "BJ" in _text(browser, "case-escalated") and "已超期" in _text(browser, "case-deadline")
    _open(browser, base + "/cases/report/")
    assert _text(browser, "loop-total").split()[1:5] == ["2", "1", "1", "1"]  # opened … overdue

    # clerk: an appeal box on the 1 and the 2, none on the 5
    _login(browser, server.url, "s001")
    _open(browser, f"{base}/ratings/BJ-001/")
    boxes = browser.find_elements(By.CSS_SELECTOR, "form.appeal")
    assert len(boxes) == 2
    boxes[0].find_element(By.NAME, "reason").send_keys("客户误按 pressed by mistake")
    boxes[0].find_element(By.TAG_NAME, "button").click()
    WebDriverWait(browser, 30).until(ec.presence_of_element_located((By.ID, "appeals")))
    assert "pressed by mistake" in _text(browser, "appeals")
    # manager decides with a note
    _login(browser, server.url, "bj-manager")
    _open(browser, base + "/appeals/?state=pending")
    table = _text(browser, "appeals")
    assert "pressed by mistake" in table and "王小明" in table
    browser.find_element(By.NAME, "note").send_keys("录像显示为真实客户 the video shows a customer")
    browser.find_element(By.CSS_SELECTOR, "button[value=rejected]").click()
    WebDriverWait(browser, 30).until(ec.text_to_be_present_in_element((By.ID, "count"), "0"))
    # clerk reads it
    _login(browser, server.url, "s001")
    _open(browser, base + "/appeals/")
    note = browser.find_element(By.CSS_SELECTOR, "#appeals .decision-note").text
    assert note == "录像显示为真实客户 the video shows a customer"
    assert "bj-manager" in _text(browser, "appeals")
    _shot(browser, "loop-appeal-decided")
