"""Error pages in a real browser: 400, 403, 404 and a refused form token are pages of the site
(its header and menu), in the reader's language, with the reason and a way back; the API's
errors stay JSON."""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait
from serverlib import Server, Site, call
from test_browser import _login, browser  # noqa: F401 (the module's browser fixture)
from webclient import WebClient

# path -> status, as the clerk s001 (a staff member of BJ-001) meets them
CLERK = {
    "/report/BJ-001/": 403,  # a clerk sees no report
    "/no/such/page/": 404,
    "/ratings/BJ-001/?since=yesterday": 400,
}
WORDS = {
    "zh-hans": {403: "无权访问", 404: "页面不存在", 400: "请求有误"},
    "en": {403: "Not allowed", 404: "Page not found", 400: "Bad request"},
}


def _error_page(driver: WebDriver, url: str, status: int, title: str) -> None:
    driver.get(url)
    WebDriverWait(driver, 10).until(ec.presence_of_element_located((By.TAG_NAME, "h1")))
    h1 = driver.find_element(By.TAG_NAME, "h1").text
    assert title in h1 and f"({status})" in h1, (url, h1)
    assert driver.find_elements(By.CSS_SELECTOR, "header.top nav"), url  # the site's menu
    assert driver.find_element(By.ID, "reason").text.strip(), url
    assert driver.find_element(By.ID, "home").get_attribute("href"), url
    severe = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"
              and f" {status} " not in e["message"]]  # fmt: skip
    assert not severe, (url, severe)


@pytest.mark.parametrize("site", ["sqlite"], indirect=True)
def test_error_pages_in_the_layout_and_both_languages(
    site: Site,
    server: Server,
    browser: WebDriver,  # noqa: F811
) -> None:
    base = server.url.rstrip("/")
    _login(browser, server.url, "s001")
    for lang in ("zh-hans", "en"):
        if lang == "en":  # switched in the page, as a reader does
            browser.get(base + "/appeals/")
            select = browser.find_element(By.NAME, "language")
            select.find_element(By.CSS_SELECTOR, "option[value=en]").click()
            WebDriverWait(browser, 10).until(lambda d: "Appeals" in d.page_source)
        for path, status in CLERK.items():
            _error_page(browser, base + path, status, WORDS[lang][status])
        html = browser.page_source
        assert "Django" not in html and "Traceback" not in html
    # a page the reader came from on this site is offered as the way back
    browser.get(base + "/appeals/")
    browser.execute_script("location.href = '/no/such/page/'")
    WebDriverWait(browser, 10).until(ec.presence_of_element_located((By.ID, "back")))
    assert browser.find_element(By.ID, "back").get_attribute("href").endswith("/appeals/")


def test_a_refused_form_token_and_the_api_errors(site: Site, server: Server) -> None:
    form = urllib.parse.urlencode({"csrfmiddlewaretoken": "stale", "username": "s001"})
    request = urllib.request.Request(
        server.url + "login/", data=form.encode(), method="POST",
        headers={"Accept-Language": "en", "Content-Type": "application/x-www-form-urlencoded"},
    )  # fmt: skip
    with pytest.raises(urllib.error.HTTPError) as refused:  # no token cookie: refused
        urllib.request.urlopen(request, timeout=30)
    status, body = refused.value.code, refused.value.read()
    assert status == 403 and b'id="reason"' in body and b"reload the page" in body, body[:300]
    assert b"CSRF" not in body  # Django's own page names the mechanism, not what to do
    for path, expect in (("/api/v1/nope", 404), ("/api/v1/nodes", 401)):
        status, answer = call(server.url, path, None)
        assert status == expect and isinstance(answer, dict) and "detail" in answer, answer
    zh = WebClient(server.url)
    status, body = zh.request("GET", "/no/such/page/")
    assert status == 404 and "页面不存在".encode() in body and b'class="top"' in body
