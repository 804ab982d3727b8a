"""A real browser: headless Chromium (Debian's chromium + chromium-driver, Selenium) logs in
as each role and walks the main pages; the live wall receives a rating from a simulated keypad
through a real agent uploading to the server; the alert it raises appears on the wall, is
acknowledged and resolved in the browser. Screenshots go to build/web-screenshots/ (git-ignored);
the documentation's come from ``tools/screenshots.py``."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait
from serverlib import Server, Site
from webclient import PASSWORDS, logged_in
from webdata import rating, upload

ROOT = Path(__file__).resolve().parents[3]
SHOTS = ROOT / "build" / "web-screenshots"
# role -> pages it walks (all in its subtree)
WALKS = {
    "hq-admin": [
        "/report/HQ/",
        "/report/BJ/",
        "/live/BJ-001/",
        "/alerts/",
        "/rules/",
        "/audit/",
        "/survey/",
    ],
    "bj-manager": [
        "/report/BJ/",
        "/report/BJ-001/",
        "/report/BJ-001/?window=BJ-001-W1",
        "/live/BJ/",
        "/alerts/",
        "/appeals/",
    ],
    "bj-viewer": ["/report/BJ/", "/live/BJ-001/", "/alerts/"],
    "s001": ["/ratings/BJ-001/", "/appeals/", "/notifications/", "/account/"],
}


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    chromium = shutil.which("chromium")
    driver_path = shutil.which("chromedriver")
    if chromium is None or driver_path is None:
        pytest.fail("chromium and chromium-driver are not installed (make setup installs them)")
    options = Options()
    options.binary_location = chromium
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1400,1000",
        "--lang=zh-CN",
    ):
        options.add_argument(arg)
    options.add_experimental_option("prefs", {"intl.accept_languages": "zh-CN,zh"})
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_page_load_timeout(30)
    SHOTS.mkdir(parents=True, exist_ok=True)
    try:
        yield driver
    finally:
        driver.quit()


def _shot(driver: WebDriver, name: str) -> Path:
    path = SHOTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path


def _login(driver: WebDriver, base: str, user: str) -> None:
    driver.delete_all_cookies()
    driver.get(base + "login/")
    driver.find_element(By.ID, "id_username").send_keys(user)
    driver.find_element(By.ID, "id_password").send_keys(PASSWORDS[user])
    driver.find_element(By.ID, "login").click()
    WebDriverWait(driver, 10).until(ec.presence_of_element_located((By.ID, "logout")))


def _assert_page_ok(driver: WebDriver, path: str) -> None:
    title = driver.title
    body = driver.find_element(By.TAG_NAME, "body").text
    assert "Server Error" not in title and "Forbidden" not in body[:200], (path, title)
    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, (path, errors)


@pytest.mark.parametrize("site", ["sqlite"], indirect=True)
def test_each_role_walks_its_pages(site: Site, server: Server, browser: WebDriver) -> None:
    upload(
        server.url,
        site.keys["BJ-001"],
        ratings=[
            rating("K1", i, s, ago_s=3600 * i) for i, s in enumerate([5, 4, 5, 3, 1, 5, 4], 1)
        ],
    )
    for user, pages in WALKS.items():
        _login(browser, server.url, user)
        for i, path in enumerate(pages):
            browser.get(server.url.rstrip("/") + path)
            WebDriverWait(browser, 10).until(ec.presence_of_element_located((By.TAG_NAME, "h1")))
            _assert_page_ok(browser, path)
            _shot(browser, f"{user}-{i}")
        if user == "s001":  # a clerk sees no report and no live wall
            browser.get(server.url + "report/BJ-001/")
            assert "(403)" in browser.find_element(By.TAG_NAME, "h1").text
    # English, switched in the page
    _login(browser, server.url, "bj-manager")
    browser.get(server.url + "report/BJ/")
    assert "报表" in browser.page_source and "Reports" not in browser.page_source  # zh-Hans
    select = browser.find_element(By.NAME, "language")
    select.find_element(By.CSS_SELECTOR, "option[value=en]").click()
    WebDriverWait(browser, 10).until(lambda d: "Reports" in d.page_source)


@pytest.mark.parametrize("site", ["sqlite"], indirect=True)
def test_live_wall_and_the_alert_loop(site: Site, server: Server, browser: WebDriver) -> None:
    import ratepad.sim
    from ratepad.agent import Agent
    from ratepad.agent.config import AgentConfig, UploadConfig

    admin = logged_in(server.url, "hq-admin")
    assert (
        admin.post("/rules/", {"name": "差评", "node": "BJ", "kind": "low_rating", "level": "2"})[0]
        == 302
    )
    # history for the report page's charts
    upload(
        server.url,
        site.keys["BJ-001"],
        ratings=[
            rating("K2", i, [5, 4, 5, 5, 3, 4, 5, 2][i % 8], staff="S002", ago_s=1800 * i)
            for i in range(1, 120)
        ],
    )
    ratepad.sim.reset()
    config = AgentConfig(
        devices=("sim://K1?debounce_ms=10&chord_ms=40&thanks_ms=300&status_ms=1000",),
        db=site.dir / "agent.db",
        listen=None,
        hello_check_s=0.5,
        upload=UploadConfig.checked(server.url, site.keys["BJ-001"], None, 100, "test", 1.0),
    )
    agent = Agent(config).start()
    try:
        _login(browser, server.url, "bj-manager")
        browser.get(server.url + "live/BJ-001/")
        WebDriverWait(browser, 10).until(
            lambda d: d.find_element(By.ID, "live-status").get_attribute("data-state") == "live"
        )
        deadline = time.monotonic() + 15
        while True:  # the keypad says hello to the agent
            try:
                agent.login("K1", "S001", "王小明")
                break
            except Exception:
                assert time.monotonic() < deadline, "the simulated keypad did not come up"
                time.sleep(0.2)
        handle = agent.prompt("K1", "S001", timeout=10)
        ratepad.sim.get("K1").press(1)
        assert agent.wait_answer("K1", handle.prompt_id, 5) is not None
        pressed = time.monotonic()
        WebDriverWait(browser, 5).until(
            lambda d: (
                "1号窗口" in d.find_element(By.ID, "latest").text
                and d.find_element(By.ID, "open-alerts").text.strip() != ""
            )
        )
        assert time.monotonic() - pressed < 5  # upload + fan-out (≤ 2 s of it server side)
        _shot(browser, "live-wall")
        # open the alert from the wall, acknowledge it, resolve it
        browser.find_element(By.CSS_SELECTOR, "#open-alerts a").click()
        WebDriverWait(browser, 10).until(ec.presence_of_element_located((By.ID, "alert-state")))
        assert browser.find_element(By.ID, "alert-state").get_attribute("data-state") == "open"
        browser.find_element(By.ID, "note").send_keys("已联系客户 called the customer")
        browser.find_element(By.ID, "acknowledge").click()
        WebDriverWait(browser, 10).until(
            ec.text_to_be_present_in_element_attribute(
                (By.ID, "alert-state"), "data-state", "acknowledged"
            )
        )
        browser.find_element(By.ID, "note").send_keys("已整改 fixed: queue sign replaced")
        browser.find_element(By.ID, "resolve").click()
        WebDriverWait(browser, 10).until(
            ec.text_to_be_present_in_element_attribute(
                (By.ID, "alert-state"), "data-state", "resolved"
            )
        )
        assert "called the customer" in browser.find_element(By.ID, "comments").text
        _shot(browser, "alert-resolved")
        browser.set_window_size(1400, 2400)  # the whole report, charts included
        browser.get(server.url + "report/BJ-001/")
        WebDriverWait(browser, 10).until(
            lambda d: d.execute_script("return !!document.querySelector('#chart-heatmap canvas')")
        )
        _shot(browser, "report")
        browser.set_window_size(1400, 1000)
    finally:
        agent.stop()
        ratepad.sim.reset()
