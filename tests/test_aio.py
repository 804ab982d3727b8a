"""The asyncio facade: really asynchronous, cancellation reaches the keypad, events() ends."""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Iterator

import pytest

import ratepad
from ratepad.aio import AsyncKeypad
from ratepad.events import Event, Rating

FAST = "debounce_ms=5&chord_ms=20&repeat_guard_ms=0&thanks_ms=200"


@pytest.fixture(autouse=True)
def fresh_keypads() -> Iterator[None]:
    ratepad.sim.reset()
    yield
    ratepad.sim.reset()


def test_open_is_reachable_from_a_plain_import() -> None:
    import subprocess
    import sys

    code = (
        "import asyncio, ratepad\n"
        "async def main():\n"
        "    kp = await ratepad.aio.open('sim://X9')\n"
        "    print(kp.info.serial)\n"
        "    await kp.close()\n"
        "asyncio.run(main())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "X9"


def test_events_end_after_close() -> None:
    async def main() -> list[Event]:
        kp = await ratepad.aio.open(f"sim://E1?{FAST}")

        async def consume() -> list[Event]:
            return [e async for e in kp.events()]

        task = asyncio.create_task(consume())
        await kp.get_config("debounce")  # the connection's first events are queued by now
        await kp.close()
        return await asyncio.wait_for(task, 3)

    events = asyncio.run(main())
    assert events  # the Connected and Status of the connection came through first


def test_concurrent_prompts_hold_no_thread() -> None:
    async def main() -> tuple[int, int, int, list[int]]:
        kps = [await ratepad.aio.open(f"sim://C{i}?{FAST}") for i in range(12)]
        before = threading.active_count()
        handles = await asyncio.gather(*(kp.start_prompt("S1", timeout=5) for kp in kps))
        tasks = [asyncio.create_task(h.wait()) for h in handles]
        await asyncio.sleep(0)  # the waits have begun
        during = threading.active_count()
        # the default executor is free for other work while 12 prompts wait
        done = await asyncio.wait_for(
            asyncio.gather(*(asyncio.to_thread(threading.get_ident) for _ in range(4))), 10
        )
        for i in range(len(kps)):
            ratepad.sim.get(f"C{i}").press(1 + i % 5)
        ratings = await asyncio.wait_for(asyncio.gather(*tasks), 5)
        for kp in kps:
            await kp.close()
        return before, during, len(done), [r.score for r in ratings]

    before, during, executor_jobs, scores = asyncio.run(main())
    assert during == before  # no thread per awaited prompt
    assert executor_jobs == 4
    assert scores == [1 + i % 5 for i in range(12)]


def test_cancelling_an_awaited_prompt_cancels_it_on_the_keypad() -> None:
    async def main() -> int:
        async with ratepad.aio.open(f"sim://K1?{FAST}") as kp:
            handle = await kp.start_prompt("S1", timeout=30)  # armed: the keypad said so
            task = asyncio.create_task(handle.wait())
            await asyncio.sleep(0)  # the wait has begun
            assert ratepad.sim.get("K1").keypad.core.rules.prompt_id != 0
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await kp.get_config("debounce")  # answered after the cancel sent before it
            armed: int = ratepad.sim.get("K1").keypad.core.rules.prompt_id
            return armed

    assert asyncio.run(main()) == 0


def test_timeouts_superseding_and_commands() -> None:
    async def main() -> None:
        kp = await ratepad.aio.open(f"sim://K2?{FAST}")
        with pytest.raises(ratepad.RatepadTimeout):
            await kp.prompt("S1", timeout=0.2)
        first = await kp.start_prompt("S1", timeout=30)
        second = await kp.start_prompt("S2", timeout=30)
        with pytest.raises(ratepad.PromptEndedError):
            await first.wait(1)
        ratepad.sim.get("K2").press(3)
        rating = await second.wait()
        assert rating.score == 3 and second.state == "answered"
        await kp.confirm(rating)
        await kp.set_config("debounce", "eager")
        assert await kp.get_config("debounce") == {"debounce": "eager"}
        await kp.login("S7", "Li")
        await kp.logout("S7")
        assert (await kp.self_test()).ok
        await asyncio.sleep(0.4)  # past the thanks display
        ratepad.sim.get("K2").press(1)
        event = await kp.next_event(2)
        while event is not None and not isinstance(event, Rating):
            event = await kp.next_event(2)
        assert isinstance(event, Rating) and not event.prompted
        await kp.close()
        with pytest.raises(ratepad.DisconnectedError):
            await kp.login("S1")

    asyncio.run(main())


def test_every_sync_method_has_an_async_twin() -> None:
    public = {n for n in dir(ratepad.Keypad) if not n.startswith("_")}
    internal: set[str] = set()
    for name in sorted(public - internal):
        sync = getattr(ratepad.Keypad, name)
        twin = getattr(AsyncKeypad, name, None)
        assert twin is not None, f"AsyncKeypad has no {name}"
        if inspect.isfunction(sync) and name not in ("add_listener", "remove_listener"):
            assert inspect.iscoroutinefunction(twin) or inspect.isasyncgenfunction(twin), name
        assert (twin.__doc__ or "").strip(), f"AsyncKeypad.{name} has no docstring"
        assert (getattr(sync, "__doc__", "") or "").strip(), f"Keypad.{name} has no docstring"
