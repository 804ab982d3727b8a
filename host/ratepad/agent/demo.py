"""``ratepad demo``: the main job on embedded defaults, offline.

Three simulated keypads (the real firmware core, ``sim://``) at three service windows feed the
agent and its SQLite store; simulated customers are prompted by the clerk's software (the agent
API, as the HTTP bridge would do it) or press unprompted, sometimes twice or on two keys at once,
sometimes walk away; one keypad's cable is pulled for a while. Every rating is printed as it is
stored; a summary follows at the end.
"""

from __future__ import annotations

import contextlib
import json
import random
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from ..errors import RatepadError
from .app import Agent
from .config import AgentConfig, ConfigError
from .hub import AgentEvent, Subscription
from .report import rating_line, summary_lines

if TYPE_CHECKING:
    from ..sim import RealtimeKeypad

__all__ = ["run_demo"]

SIM_SETTINGS = "debounce_ms=10&chord_ms=40&thanks_ms=600&repeat_guard_ms=1200&status_ms=2000"
STAFF = [("S001", "Wang Fang"), ("S002", "Li Na"), ("S003", "Zhang Wei"), ("S004", "Liu Yang")]
# how customers at each window tend to rate (weights of scores 1..5)
MOODS = [(2, 3, 8, 30, 57), (4, 6, 15, 35, 40), (10, 12, 20, 30, 28)]


class _Window(threading.Thread):
    """One service window: a clerk who prompts, customers who press (or not)."""

    def __init__(self, demo: _Demo, index: int) -> None:
        super().__init__(name=f"demo-window-{index + 1}", daemon=True)
        self.demo = demo
        self.serial = f"K{index + 1}"
        self.staff, self.name = STAFF[index % len(STAFF)]
        self.mood = MOODS[index % len(MOODS)]
        self.rng = random.Random(demo.seed * 1000 + index)

    def score(self) -> int:
        return self.rng.choices(range(1, 6), self.mood)[0]

    def run(self) -> None:
        import ratepad.sim

        demo, rng = self.demo, self.rng
        sim = ratepad.sim.get(self.serial)
        while not demo.stop.is_set():
            with contextlib.suppress(RatepadError):
                demo.agent.login(self.serial, self.staff, self.name)
                break
            demo.stop.wait(0.2)
        while not demo.stop.wait(rng.uniform(0.4, 1.6)):
            r = rng.random()
            try:
                if r < 0.72:
                    self.prompted(sim)
                elif r < 0.88:
                    sim.press(self.score())  # unprompted: stored, flagged
                elif r < 0.94:
                    key = self.score()
                    sim.press(key)
                    sim.press(key % 5 + 1)  # two keys at once: counted, never a rating
                    demo.note(f"{self.serial}: two keys pressed at once (counted, not a rating)")
            except RatepadError:
                sim.press(self.score())  # the clerk's prompt failed (cable out): press anyway

    def prompted(self, sim: RealtimeKeypad) -> None:
        demo, rng = self.demo, self.rng
        handle = demo.agent.prompt(self.serial, self.staff, timeout=3.0)
        if rng.random() < 0.1:
            demo.note(f"{self.serial}: prompt {handle.prompt_id} armed, the customer walks away")
            if self.answer(handle.prompt_id, 3.5) is None and not demo.stop.is_set():
                demo.agent.prompt_timed_out(self.serial, handle.prompt_id)
                demo.note(f"{self.serial}: prompt {handle.prompt_id} timed out")
            return
        demo.stop.wait(rng.uniform(0.2, 1.0))
        score = self.score()
        sim.press(score)
        if rng.random() < 0.08:
            sim.press(score)  # a second press right away: a repeat
            demo.note(f"{self.serial}: pressed again right away (a repeat: counted, not stored)")
        self.answer(handle.prompt_id, 3.5)

    def answer(self, prompt_id: int, timeout: float) -> object:
        # the stored rating answering the prompt; gives up early when the demo ends
        end = time.monotonic() + timeout
        while not self.demo.stop.is_set() and time.monotonic() < end:
            found = self.demo.agent.wait_answer(self.serial, prompt_id, 0.1)
            if found is not None:
                return found
        return None


class _Demo:
    agent: Agent

    def __init__(self, seed: int, out: TextIO, as_json: bool) -> None:
        self.seed = seed
        self.out = out
        self.as_json = as_json
        self.stop = threading.Event()
        self._lock = threading.Lock()

    def note(self, text: str) -> None:
        if not self.as_json:
            with self._lock:
                self.out.write(f"{'':<13} {text}\n")
                self.out.flush()

    def show(self, event: AgentEvent) -> None:
        with self._lock:
            if self.as_json:
                self.out.write(json.dumps(event.data, ensure_ascii=False) + "\n")
            else:
                self.out.write(rating_line(event.data) + "\n")
            self.out.flush()

    def printer(self, sub: Subscription) -> None:
        for event in sub:
            if event.kind == "rating":
                self.show(event)


def run_demo(
    seconds: float = 20.0,
    *,
    devices: int = 3,
    db: Path | None = None,
    seed: int | None = None,
    out: TextIO | None = None,
    as_json: bool = False,
) -> int:
    """Run the demo; returns the number of ratings stored."""
    import ratepad.sim

    out = out or sys.stdout
    if db is not None and db.exists():
        # fresh simulated keypads start at journal seq 1: they are not the keypads in that store
        raise ConfigError(f"{db} exists: give the demo a new store path")
    seed = random.randrange(1_000_000) if seed is None else seed
    tmp = None if db is not None else Path(tempfile.mkdtemp(prefix="ratepad-demo-"))
    path = db if db is not None else Path(tmp or ".") / "ratings.db"
    serials = [f"K{i + 1}" for i in range(devices)]
    config = AgentConfig(
        devices=tuple(f"sim://{s}?{SIM_SETTINGS}" for s in serials),
        db=path,
        listen=None,
        hello_check_s=1.0,
    )
    ratepad.sim.reset()
    agent: Agent | None = None
    try:
        demo = _Demo(seed, out, as_json)
        agent = demo.agent = Agent(config, log=demo.note)
        if not as_json:
            out.write(
                f"ratepad demo: {devices} simulated keypads -> agent -> SQLite store {path}\n"
                f"(seed {seed}; {seconds:g} s; time~ = reconstructed from keypad uptime)\n"
            )
            out.flush()
        sub = agent.hub.subscribe()
        agent.start()
        printer = threading.Thread(target=demo.printer, args=(sub,), daemon=True)
        printer.start()
        windows = [_Window(demo, i) for i in range(devices)]
        for w in windows:
            w.start()
        pull_at = seconds * 0.4
        unplugged = min(2.5, seconds * 0.15)
        t0 = time.monotonic()
        if devices >= 2 and not demo.stop.wait(pull_at):
            kp = ratepad.sim.get(serials[1])
            demo.note(f"{serials[1]}: USB cable pulled; ratings stay in the keypad's journal")
            kp.disconnect()
            demo.stop.wait(unplugged)
            demo.note(f"{serials[1]}: plugged back in")
            kp.connect()
        demo.stop.wait(max(0.0, seconds - (time.monotonic() - t0)))
        demo.stop.set()
        for w in windows:
            w.join(timeout=5)
        time.sleep(0.5)  # the last presses: decided, journalled, sent, stored
        agent.stop()
        sub.close()
        printer.join(timeout=2)
        summary = agent.store.summary()
        if as_json:
            for row in summary:
                out.write(json.dumps({"summary": row}) + "\n")
        else:
            out.write("\n" + "\n".join(summary_lines(summary)) + "\n")
            out.write(
                "index = mean of level values (very satisfied 100, satisfied 80, neutral 60, "
                "dissatisfied 40, very dissatisfied 0); response = answered / prompts\n"
            )
            if tmp is None:
                out.write(f"store kept: ratepad export --db {path} --csv\n")
        return sum(int(r["ratings"]) for r in summary)
    finally:
        if agent is not None:
            agent.stop()
        ratepad.sim.reset()
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
