"""The example page in a real headless Chromium (Debian's chromium + chromium-driver, Selenium):
served by the bridge or by an allowed origin it arms a keypad over the WebSocket and shows the
simulated customer's answer; from a foreign origin, or under a foreign Host name (DNS
rebinding), the bridge refuses it. Screenshots go to tests/artifacts/."""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import ratepad
from ratepad.agent.sandbox import Sandbox

selenium = pytest.importorskip("selenium")
from selenium import webdriver  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
PAGE_DIR = Path(ratepad.__file__).resolve().parent / "agent" / "bridge"

pytestmark = pytest.mark.skipif(
    CHROMIUM is None or DRIVER is None, reason="needs chromium and chromedriver (Debian packages)"
)


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def static_server() -> http.server.ThreadingHTTPServer:
    """Another origin serving the same page (as a teller application's own web server)."""
    handler = functools.partial(Quiet, directory=str(PAGE_DIR))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[http.server.ThreadingHTTPServer, http.server.ThreadingHTTPServer]]:
    allowed, foreign = static_server(), static_server()
    yield allowed, foreign
    for s in (allowed, foreign):
        s.shutdown()
        s.server_close()


@pytest.fixture(scope="module")
def sandbox(
    servers: tuple[http.server.ThreadingHTTPServer, http.server.ThreadingHTTPServer],
) -> Iterator[Sandbox]:
    ratepad.sim.reset()
    origin = f"http://127.0.0.1:{servers[0].server_address[1]}"
    with Sandbox(2, listen=("127.0.0.1", 0), answer_after=(0.3, 0.6), seed=5,
                 allow_origins=(origin,)) as sb:  # fmt: skip
        yield sb
    ratepad.sim.reset()


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    assert CHROMIUM is not None and DRIVER is not None
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1000,900",
        "--host-resolver-rules=MAP rebind.test 127.0.0.1",
    ):
        options.add_argument(arg)  # fmt: skip
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(DRIVER))
    driver.set_page_load_timeout(20)
    yield driver
    driver.quit()


def answer_from(browser: webdriver.Chrome, url: str, shot: str) -> str:
    browser.get(url)
    wait = WebDriverWait(browser, 15)
    wait.until(lambda d: d.find_element(By.ID, "link").text == "connected")
    browser.find_element(By.ID, "prompt").click()
    wait.until(lambda d: "answered" in d.find_element(By.ID, "answer").get_attribute("class"))
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / shot))
    return str(browser.find_element(By.ID, "answer").text)


def test_the_page_served_by_the_bridge_arms_a_keypad(
    browser: webdriver.Chrome, sandbox: Sandbox
) -> None:
    text = answer_from(browser, sandbox.page_url, "browser_bridge.png")
    assert text.startswith("score ") and "from SB1" in text


def test_the_page_on_an_allowed_origin_works(
    browser: webdriver.Chrome,
    sandbox: Sandbox,
    servers: tuple[http.server.ThreadingHTTPServer, http.server.ThreadingHTTPServer],
) -> None:
    port = servers[0].server_address[1]
    url = f"http://127.0.0.1:{port}/static/index.html?bridge={sandbox.url}#token={sandbox.token}"
    assert answer_from(browser, url, "browser_allowed_origin.png").startswith("score ")


def test_a_page_on_another_origin_is_refused(
    browser: webdriver.Chrome,
    sandbox: Sandbox,
    servers: tuple[http.server.ThreadingHTTPServer, http.server.ThreadingHTTPServer],
) -> None:
    port = servers[1].server_address[1]
    url = f"http://127.0.0.1:{port}/static/index.html?bridge={sandbox.url}#token={sandbox.token}"
    browser.get(url)
    WebDriverWait(browser, 15).until(lambda d: d.find_element(By.ID, "link").text == "refused")
    assert "failed" in browser.find_element(By.ID, "answer").get_attribute("class")
    # the page cannot arm a keypad either, whatever it tries
    browser.execute_async_script(
        """const done = arguments[arguments.length - 1];
        fetch(arguments[0] + "/v1/devices/SB2/prompt", {method: "POST",
              headers: {"Authorization": "Bearer " + arguments[1]}, body: "{}"})
          .then(() => done("sent"), () => done("blocked"));""",
        sandbox.url,
        sandbox.token,
    )
    assert ratepad.sim.get("SB2").keypad.core.rules.prompt_id == 0
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "browser_foreign_origin.png"))


def test_a_foreign_host_name_is_refused(browser: webdriver.Chrome, sandbox: Sandbox) -> None:
    port = sandbox.url.rsplit(":", 1)[1]
    browser.get(f"http://rebind.test:{port}/")  # a rebound name that resolves to 127.0.0.1
    body = browser.find_element(By.TAG_NAME, "body").text
    assert "bad_host" in body
