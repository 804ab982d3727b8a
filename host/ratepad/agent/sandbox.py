"""A sandbox for integrators: the agent and its bridge in front of simulated keypads whose
simulated customers answer prompts, so that teller, queue and browser software can be written
and tested without hardware.

    with Sandbox(keypads=3) as sb:          # ratepad sandbox
        print(sb.page_url)                  # the example page, token in the URL's fragment
        ...                                 # arm SB1..SB3 over HTTP or the WebSocket

Each keypad is the real firmware core on the wall clock (``ratepad.sim``). A customer watches
its keypad: when a prompt is armed, after a random delay (``answer_after``) it presses a key
for a random score (``scores``: weights of scores 1..5), or, with probability ``ignore``, walks
away and lets the prompt time out: one press per prompt. The store is a temporary file unless
``db`` is given; the token is fresh on every run unless ``token`` is given (a sandbox token,
printed in the page URL's fragment, which browsers do not send to servers).
"""

from __future__ import annotations

import contextlib
import random
import secrets
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .app import Agent
from .config import AgentConfig

__all__ = ["Customer", "Sandbox"]

FAST = {"debounce_ms": 5, "chord_ms": 20, "repeat_guard_ms": 0, "thanks_ms": 300}
DEFAULT_SCORES = (1, 1, 2, 4, 6)  # weights of scores 1..5: most customers are satisfied


class Customer:
    """The person at one simulated keypad: answers each armed prompt once."""

    def __init__(
        self,
        device_id: str,
        rng: random.Random,
        answer_after: tuple[float, float],
        ignore: float,
        scores: tuple[int, ...],
    ) -> None:
        self.device_id = device_id
        self.rng = rng
        self.answer_after = answer_after
        self.ignore = ignore
        self.scores = scores
        self._seen = 0  # the prompt id last dealt with
        self._press_at: float | None = None
        self.answered = 0
        self.ignored = 0

    def tick(self, now: float) -> None:
        import ratepad.sim

        sim = ratepad.sim.get(self.device_id)
        armed = int(sim.keypad.core.rules.prompt_id)
        if not armed:
            # disarmed (answered, timed out, cancelled): nothing to press until the next prompt,
            # and the same id armed again is a new prompt
            self._seen = 0
            self._press_at = None
        if armed and armed != self._seen:
            self._seen = armed
            if self.rng.random() < self.ignore:
                self.ignored += 1
                self._press_at = None
            else:
                low, high = self.answer_after
                self._press_at = now + self.rng.uniform(low, high)
        if self._press_at is not None and now >= self._press_at:
            self._press_at = None
            if armed == self._seen:  # still this prompt (armed, so never 0 here)
                score = self.rng.choices(range(1, len(self.scores) + 1), self.scores)[0]
                sim.press(sim.keypad.key_for_score(score))
                self.answered += 1
                # a press during the thanks display of the last answer does not count: if
                # the prompt is still armed a little later, press again
                self._press_at = now + 0.5
        elif self._press_at is not None and armed != self._seen:  # another prompt meanwhile
            self._press_at = None


class Sandbox:
    """Simulated keypads ``SB1``.. with customers, the agent and its bridge (example page on)."""

    def __init__(
        self,
        keypads: int = 3,
        *,
        listen: tuple[str, int] = ("127.0.0.1", 8765),
        db: Path | None = None,
        allow_origins: tuple[str, ...] = (),
        answer_after: tuple[float, float] = (0.5, 2.0),
        ignore: float = 0.0,
        scores: tuple[int, ...] = DEFAULT_SCORES,
        seed: int | None = None,
        token: str | None = None,
        log: Callable[[str], None] = lambda line: None,
    ) -> None:
        self.ids = [f"SB{i + 1}" for i in range(keypads)]
        self.token = token or secrets.token_urlsafe(24)
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if db is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="ratepad-sandbox-")
            db = Path(self._tmp.name) / "sandbox.db"
        query = "&".join(f"{k}={v}" for k, v in FAST.items())
        self.config = AgentConfig(
            devices=tuple(f"sim://{i}?{query}" for i in self.ids),
            db=db,
            listen=listen,
            token=self.token,
            allow_origins=allow_origins,
            example_page=True,
            hello_check_s=2.0,
        )
        rng = random.Random(seed)
        self.customers = [
            Customer(i, random.Random(rng.random()), answer_after, ignore, scores) for i in self.ids
        ]
        self.log = log
        self.agent: Agent | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._customers, name="sandbox", daemon=True)

    @property
    def url(self) -> str:
        assert self.agent is not None and self.agent.bridge_url is not None
        return self.agent.bridge_url

    @property
    def page_url(self) -> str:
        """The example page, with the sandbox token in the fragment."""
        return f"{self.url}/#token={self.token}"

    def start(self, connect_timeout: float = 10.0) -> Sandbox:
        self.agent = Agent(self.config, log=self.log).start()
        end = time.monotonic() + connect_timeout
        while not all(w.connected for w in self.agent.workers):
            if time.monotonic() > end:
                self.stop()
                raise TimeoutError("the simulated keypads did not connect")
            time.sleep(0.02)
        self._thread.start()
        return self

    def _customers(self) -> None:
        while not self._stop.wait(0.02):
            now = time.monotonic()
            for customer in self.customers:
                with contextlib.suppress(Exception):  # a keypad removed while stopping
                    customer.tick(now)

    def stop(self) -> None:
        import ratepad.sim

        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(2)
        if self.agent is not None:
            self.agent.stop()
        for device_id in self.ids:
            ratepad.sim.remove(device_id)
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stats(self) -> dict[str, Any]:
        return {
            "answered": sum(c.answered for c in self.customers),
            "ignored": sum(c.ignored for c in self.customers),
        }
