# The keypad core end to end on a virtual clock: rating rules, link, journal, time.
# Runs on CPython and on MicroPython (plain asserts).
from sim.keypad import Bench
from sim.memstorage import MemStorage, PowerCut
from rpfw.ticks import PERIOD, ticks_diff
from rpfw.journal import Journal

FAST = {"debounce_ms": 5, "chord_ms": 40}


def _ready(**kw):
    settings = dict(FAST)
    for k in kw.pop("settings", {}).items():
        settings[k[0]] = k[1]
    b = Bench(settings=settings, **kw)
    b.hello()
    b.send("time_sync", {"epoch_ms": 1_800_000_000_000})
    return b


def test_hello_and_status_on_host_hello():
    b = Bench(settings=FAST)
    b.hello()
    hello = b.take("hello")[0]
    assert hello["protocol_version"] == 1 and hello["key_count"] == 5
    assert hello["boot_count"] == 1 and hello["journal_capacity"] == 20000
    status = b.take("status")[0]
    assert status["state"] == "idle"
    assert "time_unsynced" in status["faults"]


def test_prompted_rating_then_ack_trims_the_journal():
    b = _ready(auto_ack=False)
    b.send("login", {"staff_id": "S001", "display_name": "Wang"})
    seq = b.send("prompt", {"prompt_id": 7, "timeout_ms": 30000, "staff_id": "S002"})
    assert (seq, "ok", "") in b.results()
    assert b.hw.led_mask == 0b11111  # every key invites a press
    t0 = b.now
    b.press(5)
    ratings = b.take("rating")
    assert len(ratings) == 1
    r = ratings[0]
    assert (r["score"], r["prompt_id"], r["staff_id"], r["flags"]) == (5, 7, "S002", [])
    assert r["journal_seq"] == 1 and r["boot_id"] == 1
    # stamped at the debounced press (debounce_ms after the raw edge), on both clocks
    assert r["uptime_ms"] == t0 + 5
    assert r["epoch_ms"] == 1_800_000_000_000 + t0 + 5
    assert b.hw.led_mask == 1 << 4  # thank you on the pressed key
    assert b.core.journal.unacked() == 1
    b.send("ack", {"journal_seq": 1})
    assert b.core.journal.unacked() == 0
    b.advance(3000)
    assert b.hw.led_mask == 0


def test_unprompted_press_is_flagged_or_ignored():
    b = _ready()
    b.press(3)
    r = b.take("rating")[0]
    assert r["flags"] == ["unprompted", "no_staff"] and r["prompt_id"] == 0 and r["score"] == 3
    b2 = _ready(settings={"unprompted": "ignore"})
    b2.press(3)
    assert b2.take("rating") == []
    assert b2.core.rules.unprompted == 1


def test_repeat_presses_after_a_rating_are_counted_not_rated():
    b = _ready()
    b.send("prompt", {"prompt_id": 1, "timeout_ms": 0, "staff_id": "S1"})
    b.press(4, hold_ms=80, settle_ms=100)
    b.press(4, hold_ms=80, settle_ms=100)
    b.press(2, hold_ms=80, settle_ms=100)
    assert len(b.take("rating")) == 1
    assert b.core.rules.repeats == 2
    b.advance(4000)  # past the repeat guard: an unprompted rating again
    b.press(2)
    assert b.take("rating")[0]["flags"] == ["unprompted", "no_staff"]


def test_several_keys_at_once_give_no_rating():
    b = _ready()
    b.send("prompt", {"prompt_id": 3, "timeout_ms": 0, "staff_id": "S1"})
    b.keys(0b00001)
    b.advance(10)
    b.keys(0b00011)  # second key within the chord window
    b.advance(100)
    b.keys(0)
    b.advance(200)
    assert b.take("rating") == []
    assert b.core.rules.multi_key == 1
    assert b.core.rules.prompt_id == 3  # the prompt is still armed for a proper press
    b.press(1)
    assert b.take("rating")[0]["prompt_id"] == 3


def test_stuck_key_is_reported_and_ignored_until_released():
    b = _ready(settings={"stuck_ms": 2000})
    b.keys(0b00100)
    b.advance(2500)
    assert b.core.rules.stuck == 0b00100
    statuses = b.take("status")
    assert "stuck_key" in statuses[-1]["faults"] and statuses[-1]["stuck_keys"] == 0b00100
    b.take("rating")  # the press itself was an unprompted rating
    b.advance(4000)
    b.send("prompt", {"prompt_id": 9, "timeout_ms": 0, "staff_id": "S1"})
    b.press(1)  # other keys still work while key 3 is stuck
    r = b.take("rating")[0]
    assert r["prompt_id"] == 9 and "stuck_key" in r["flags"]
    b.keys(0)
    b.advance(100)
    assert b.core.rules.stuck == 0
    assert "stuck_key" not in b.take("status")[-1]["faults"]


def test_key_held_at_boot_is_not_a_press():
    b = Bench(settings=FAST, raw=0b00010)
    b.hello()
    b.advance(500)
    b.keys(0)
    b.advance(500)
    assert b.take("rating") == []


def test_unacked_ratings_are_sent_again_oldest_first():
    b = _ready(settings={"ack_timeout_ms": 1000}, auto_ack=False)
    for key in (1, 2, 3):
        b.press(key, settle_ms=4000)
    sent = [r["journal_seq"] for r in b.take("rating")]
    assert sent[0] == 1 and sorted(set(sent)) == [1, 2, 3]
    assert sent.count(1) > 1  # not ACKed: sent again
    b.received = []
    b.advance(40000)
    again = [r["journal_seq"] for r in b.take("rating")]
    assert again[:3] == [1, 2, 3]  # each retry goes back to the oldest unACKed
    assert len(again) < 20  # the retry interval backs off
    b.send("ack", {"journal_seq": 2})
    b.received = []
    # the link drops and comes back: a new session resends what is still unACKed
    b.core.disconnect(b.now)
    b.press(4, settle_ms=200)
    assert b.take("rating") == []  # no session: nothing sent, but journalled
    b.hello()
    b.advance(10)
    assert [r["journal_seq"] for r in b.take("rating")] == [3, 4]


def test_retransmitted_frames_carry_the_retransmit_flag():
    b = _ready(settings={"ack_timeout_ms": 500}, auto_ack=False)
    b.press(5)
    b.received = []
    b.advance(700)
    frames = [f for f in b.received if f[0] == "rating"]
    assert frames and "retransmit" in frames[0][3]


def test_time_survives_ticks_wraparound():
    start = PERIOD - 300
    b = _ready(now=start)
    b.send("prompt", {"prompt_id": 1, "timeout_ms": 0, "staff_id": "S1"})
    b.advance(500)  # ticks wrap here
    t = ticks_diff(b.now, start)
    b.press(2)
    r = b.take("rating")[0]
    assert r["uptime_ms"] == t + 5
    assert r["epoch_ms"] == 1_800_000_000_000 + t + 5


def test_full_journal_refuses_ratings_and_prompts():
    b = _ready(settings={"capacity": 2}, auto_ack=False)
    b.press(1, settle_ms=4000)
    b.press(2, settle_ms=4000)
    b.press(3, settle_ms=4000)
    assert sorted(set([r["journal_seq"] for r in b.take("rating")])) == [1, 2]
    assert b.core.rules.refused == 1
    status = b.take("status")[-1]
    assert "journal_full" in status["faults"] and status["state"] == "fault"
    seq = b.send("prompt", {"prompt_id": 5, "timeout_ms": 0, "staff_id": "S1"})
    assert (seq, "failed", "journal full") in b.results()
    b.send("ack", {"journal_seq": 2})
    b.press(3)
    assert [r["journal_seq"] for r in b.take("rating")] == [3]


def test_config_get_set_persist_and_errors():
    b = _ready()
    seq = b.send("set_config", {"key": "debounce", "value": "asym"})
    assert (seq, "ok", "") in b.results()
    seq = b.send("set_config", {"key": "debounce_ms", "value": "500"})
    assert b.results() == [(seq, "bad_value", "out of range 1..100")]
    seq = b.send("set_config", {"key": "colour", "value": "red"})
    assert b.results() == [(seq, "bad_value", "unknown setting")]
    seq = b.send("get_config", {"key": "debounce"})
    values = b.take("config_value")
    assert values == [{"request_seq": seq, "key": "debounce", "value": "asym"}]
    b.send("get_config", {"key": ""})
    assert len(b.take("config_value")) >= 10
    # persisted: a rebooted keypad keeps it
    b2 = Bench(storage=b.storage)
    assert b2.core.settings.get("debounce") == "asym"


def test_power_cut_while_journalling_is_not_a_thank_you():
    st = MemStorage()
    b = _ready(storage=st)
    b.send("prompt", {"prompt_id": 1, "timeout_ms": 0, "staff_id": "S1"})
    st.budget = 20  # the power fails in the middle of the rating's journal write
    cut = False
    try:
        b.press(5)
    except PowerCut:
        cut = True
    assert cut
    assert b.hw.led_mask != 1 << 4  # the customer was never thanked
    st.budget = -1
    b2 = Bench(storage=st, settings=FAST)
    b2.hello()
    hello = b2.take("hello")[0]
    assert hello["boot_count"] == 2 and hello["journal_used"] == 0
    b2.press(5)
    assert b2.take("rating")[0]["journal_seq"] == 1


def test_key_events_stream_debounced_edges_with_bounces():
    b = _ready()
    b.send("key_events", {"enabled": True})
    b.keys(0b1)
    b.advance(1)
    b.keys(0)
    b.advance(1)
    b.keys(0b1)
    b.advance(100)
    b.keys(0)
    b.advance(100)
    events = b.take("key_event")
    assert [(e["key"], e["down"]) for e in events] == [(1, True), (1, False)]
    assert events[0]["bounces"] == 2


def test_self_test_reports_what_failed():
    b = _ready()
    seq = b.send("self_test", {})
    assert (seq, "ok", "") in b.results()
    b.hw.failed = "led3"
    seq = b.send("self_test", {})
    assert (seq, "failed", "led3") in b.results()


def test_unknown_command_and_cancel():
    b = _ready()
    seq = b.send("unknown", {"type_id": 0x7E, "payload": "00"})
    assert b.results() == [(seq, "unsupported", "unknown message type")]
    seq = b.send("cancel_prompt", {"prompt_id": 4})
    assert b.results() == [(seq, "not_found", "no such prompt")]
    b.send("prompt", {"prompt_id": 4, "timeout_ms": 0, "staff_id": "S1"})
    seq = b.send("cancel_prompt", {"prompt_id": 4})
    assert (seq, "ok", "") in b.results()
    assert b.core.rules.prompt_id == 0


def test_prompt_times_out():
    b = _ready()
    b.send("prompt", {"prompt_id": 8, "timeout_ms": 1000, "staff_id": "S1"})
    b.advance(1200)
    assert b.core.rules.prompt_id == 0
    assert b.take("status")[-1]["state"] == "idle"
    b.press(1)
    assert b.take("rating")[0]["flags"] == ["unprompted", "no_staff"]


def test_ratings_before_the_first_time_sync_are_dated_when_sent():
    from rpfw import codec

    b = Bench(settings=FAST, now=5000)
    b.press(3)  # no host yet: journalled without a wall-clock time
    b.advance(10000)
    # the host says hello and the time in one go, as ratepad's Session does
    hello = codec.encode_frame("host_hello", {"protocol_version": 1, "schema_fingerprint": 0,
                                              "software": "t"}, 1)
    sync = codec.encode_frame("time_sync", {"epoch_ms": 1_800_000_000_000}, 2)
    b.core.receive(hello + sync, b.now)
    b.drain()
    r = b.take("rating")[0]
    # pressed at uptime 5 (5 ms debounce), synced at uptime 10320: dated by this boot's clock
    assert r["uptime_ms"] == 5
    assert r["epoch_ms"] == 1_800_000_000_000 - (10320 - 5)


def test_a_new_prompt_ends_the_repeat_guard():
    b = _ready()
    b.send("prompt", {"prompt_id": 1, "timeout_ms": 0, "staff_id": "S1"})
    b.press(5, settle_ms=2100)  # thank-you over, still inside the 3 s repeat guard
    b.send("prompt", {"prompt_id": 2, "timeout_ms": 0, "staff_id": "S1"})
    b.press(2)
    assert [r["prompt_id"] for r in b.take("rating")] == [1, 2]


def test_a_very_long_prompt_timeout_is_clamped_not_wrapped():
    b = _ready()
    b.send("prompt", {"prompt_id": 3, "timeout_ms": 7 * 24 * 3600 * 1000, "staff_id": "S1"})
    b.advance(1000)
    assert b.core.rules.prompt_id == 3  # still armed (it would wrap and expire otherwise)


def test_changing_the_number_of_keys_takes_effect_at_the_next_boot():
    b = _ready()
    seq = b.send("set_config", {"key": "keys", "value": "3"})
    assert (seq, "ok", "applies after a reboot") in b.results()
    b.press(5)  # still a 5-key keypad until it reboots: key 5 is score 5
    assert b.take("rating")[0]["score"] == 5
    b2 = Bench(storage=b.storage, settings=None)
    assert b2.core.nkeys == 3 and b2.core.settings.get("key_order") == "123"
    # a custom key order must be undone before the key count changes
    b2.hello()
    b2.send("set_config", {"key": "key_order", "value": "321"})
    seq = b2.send("set_config", {"key": "keys", "value": "5"})
    assert b2.results()[-1] == (seq, "bad_value", "set key_order=123 first")


def test_an_ack_reaches_the_flash_in_a_quiet_moment():
    # The ACK rides with the next rating's journal write; with none coming it is written on
    # its own two seconds later, so a power cut after that does not bring the rating back.
    st = MemStorage()
    b = _ready(storage=st)
    b.send("prompt", {"prompt_id": 1, "timeout_ms": 0, "staff_id": "S1"})
    b.press(3)
    assert b.core.journal.ack_seq == 1  # the bench ACKs each rating as it arrives
    again = Journal(st)
    again.open()
    assert again.ack_seq == 0  # not in flash yet
    b.advance(2000)
    assert not b.core.journal.ack_dirty
    again = Journal(st)
    again.open()
    assert again.ack_seq == 1 and again.next_seq == 2
    assert len(b.take("status")) >= 1 and not b.core.storage_error


def test_status_reports_what_flash_holds_apart_from_what_is_unacked():
    b = _ready(settings={"capacity": 100, "thanks_ms": 200, "repeat_guard_ms": 0})
    b.auto_ack = False
    for i in range(3):
        b.send("prompt", {"prompt_id": i + 1, "timeout_ms": 0, "staff_id": "S1"})
        b.press(1 + i)
        b.advance(300)
    assert b.core.journal.next_seq == 4
    b.send("ack", {"journal_seq": 2})
    b.received = []
    b.advance(10000)
    st = b.take("status")[-1]
    assert (st["journal_used"], st["unacked"], st["acked_seq"]) == (3, 1, 2)


def test_self_test_walks_every_led_then_the_status_led():
    b = _ready()
    b.advance(100)
    b.send("self_test", {})
    seen = []
    for _ in range(7):
        seen.append((b.hw.led_mask, b.hw.status))
        b.advance(300)
    assert [m for m, s in seen[:5]] == [1, 2, 4, 8, 16]  # each key's LED in turn
    assert seen[5] == (0, True)  # then the status LED alone
    assert seen[6][0] == 0  # then back to normal
