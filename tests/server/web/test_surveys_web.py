"""The survey report, the survey figures on a node's report and a return visit walked in
headless Chromium, in Chinese and in English: the charts draw (ECharts, no console error), the
pages speak the reader's language, a return visit started from a bad rating's row is saved and
listed."""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.ui import WebDriverWait
from serverlib import Server, Site
from test_browser import _assert_page_ok, _login, _shot, browser  # noqa: F401 (a fixture)
from webclient import logged_in
from webdata import rating, upload

# the server tests' survey import (a module name tests/test_surveys.py also has)
_spec = importlib.util.spec_from_file_location(
    "server_test_surveys", Path(__file__).resolve().parents[1] / "test_surveys.py"
)
assert _spec is not None and _spec.loader is not None
_surveys = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_surveys)
SPAN, import_example = _surveys.SPAN, _surveys.import_example

WORDS = {  # language -> what its pages say
    "zh-hans": {"survey": "问卷调查", "gaps": "各维度服务质量差距", "visits": "回访"},
    "en": {"survey": "Survey", "gaps": "Service quality gaps by dimension",
           "visits": "Return visits"},
}  # fmt: skip


def _wait_for(driver: WebDriver, css: str) -> None:
    WebDriverWait(driver, 10).until(ec.presence_of_element_located((By.CSS_SELECTOR, css)))


@pytest.mark.parametrize("site", ["sqlite"], indirect=True)
def test_survey_report_figures_and_a_return_visit_in_both_languages(
    site: Site,
    server: Server,
    browser: WebDriver,  # noqa: F811
) -> None:
    status, _, _ = import_example(logged_in(server.url, "bj-manager"), n=80)
    assert status == 302
    upload(server.url, site.keys["BJ-001"], ratings=[rating("K1", 1, 1), rating("K1", 2, 4)])
    _login(browser, server.url, "bj-manager")
    for visits, lang in enumerate(("zh-hans", "en"), 1):
        words = WORDS[lang]
        browser.add_cookie({"name": "django_language", "value": lang})
        browser.get(f"{server.url}survey/BJ-001/?{SPAN}")
        _wait_for(browser, "#chart-gaps canvas")
        _wait_for(browser, "#chart-ipa canvas")
        assert words["survey"] in browser.find_element(By.TAG_NAME, "h1").text
        assert words["gaps"] in browser.find_element(By.TAG_NAME, "body").text
        rows = browser.find_elements(By.CSS_SELECTOR, "#dimensions tr[id^=dim-]")
        assert len(rows) == 5 and all("n = 80" in r.text for r in rows)
        assert "n = 80" in browser.find_element(By.ID, "nps").text
        _assert_page_ok(browser, "survey report")
        _shot(browser, f"survey-report-{lang}")

        browser.get(f"{server.url}report/BJ-001/?{SPAN}")
        figures = browser.find_element(By.ID, "survey-figures")
        assert words["survey"] in figures.text and "NPS" in figures.text
        assert "n = 80" in browser.find_element(By.ID, "survey-nps").text
        _assert_page_ok(browser, "node report")

        browser.get(f"{server.url}ratings/BJ-001/")
        links = browser.find_elements(By.CSS_SELECTOR, "#ratings a.return-visit")
        assert len(links) == 1  # the 1, not the 4
        links[0].click()
        _wait_for(browser, "#visit-form")
        Select(browser.find_element(By.ID, "id_channel")).select_by_value("phone")
        Select(browser.find_element(By.ID, "id_outcome")).select_by_value("resolved")
        browser.find_element(By.ID, "id_satisfaction_after").send_keys("4")
        browser.find_element(By.ID, "id_note").send_keys(f"called back ({lang})")
        browser.find_element(By.ID, "save-visit").click()
        _wait_for(browser, "#visit-counts")
        assert words["visits"] in browser.find_element(By.TAG_NAME, "h1").text
        deadline = time.monotonic() + 10
        while len(browser.find_elements(By.CSS_SELECTOR, "#visits tr.visit")) < visits:
            assert time.monotonic() < deadline, "the return visit is not listed"
            time.sleep(0.2)
        assert f"called back ({lang})" in browser.find_element(By.ID, "visits").text
        counts = browser.find_element(By.CSS_SELECTOR, "#visit-counts tr:nth-child(2)").text
        assert counts.split()[:3] == ["BJ-001", "朝阳支行", str(visits)]
        _assert_page_ok(browser, "return visits")
        _shot(browser, f"return-visits-{lang}")
    # the branch's overview: this month's survey beside the keypads' cards
    _login(browser, server.url, "bj001-admin")
    this_month = _surveys.LAST.month == _surveys.TODAY.month  # the survey's period ends then
    for lang in ("zh-hans", "en"):
        browser.add_cookie({"name": "django_language", "value": lang})
        browser.get(server.url)
        _wait_for(browser, "#cards")
        figures = browser.find_element(By.ID, "survey-figures")
        assert WORDS[lang]["survey"] in figures.text
        if this_month:
            assert "NPS" in figures.text and "n = 80" in figures.text
        else:
            assert browser.find_elements(By.ID, "survey-none")
        _assert_page_ok(browser, "overview")
