"""Replay a capture through the host stack, as fast as possible and in real time.

The capture: one keypad's hello, then N rating frames (default 100,000), each in its own 64-byte
HID report (zero-padded, as a USB capture records them), 10 ms apart, written with CaptureWriter.

(a) baseline: the sans-IO StreamDecoder alone, fed the same 64-byte chunks from memory;
(b) replay:// + Session: the ReplayTransport (speed 0) handing out the chunks, a Session turning
    them into typed events (Rating with wall-clock time), the events drained: what
    `ratepad replay` does before printing;
(c) `ratepad replay FILE --json` in-process, output thrown away (b + JSON formatting + printing,
    and the file read);
the file read itself (dpkt pcapng blocks, paid once by (b) at open) is timed separately.

Then real-time replay (speed 1) of a shorter capture: how late each chunk was handed out
(target: median at most 1 ms).

    python bench/bench_replay.py [--frames 100000] [--realtime-chunks 500] [--gap-ms 5]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from ratepad.capture.pcapng import CaptureWriter, read_capture
from ratepad.capture.replay import ReplayTransport
from ratepad.cli.capture import replay_url
from ratepad.cli.main import main as cli_main
from ratepad.errors import EndOfCapture
from ratepad.transports import to_reports
from ratepad.wire import codec
from ratepad.wire.session import Session
from ratepad.wire.stream import Frame, StreamDecoder

DEVICE = "RP-0001"
T0_US = 1_790_000_000_000_000


def hello_report() -> bytes:
    hello = codec.Hello(
        protocol_version=codec.PROTOCOL_VERSION,
        schema_fingerprint=codec.SCHEMA_FINGERPRINT,
        key_count=5,
        capabilities=codec.Capabilities.KEY_EVENTS | codec.Capabilities.TIME_SYNC,
        journal_capacity=20_000,
        journal_used=0,
        boot_count=3,
        uptime_ms=1_000,
        serial=DEVICE,
        firmware_version="0.1.0",
        board="pico",
        acked_seq=0,
    )
    return to_reports(codec.encode(hello, 1, codec.HeaderFlags.RESPONSE))[0]


def rating_reports(n: int, seed: int = 1) -> list[bytes]:
    rng = random.Random(seed)
    staff = [f"S{i:03d}" for i in range(50)]
    out = []
    for seq in range(1, n + 1):
        msg = codec.Rating(
            journal_seq=seq,
            boot_id=3,
            uptime_ms=1_000 + seq * 10,
            epoch_ms=None if rng.random() < 0.1 else T0_US // 1000 + seq * 10,
            score=rng.randrange(1, 6),
            key_count=5,
            prompt_id=rng.randrange(1 << 32),
            flags=codec.RatingFlags(rng.choice((0, 0, 0, 1, 2))),
            staff_id=rng.choice(staff),
        )
        frame = codec.encode(msg, (seq + 1) & 0xFFFF)
        out.extend(to_reports(frame))
    return out


def write_capture(path: Path, reports: list[bytes], gap_us: int) -> None:
    with CaptureWriter(path, application="bench_replay") as w:
        for i, report in enumerate(reports):
            w.write(DEVICE, "in", report, T0_US + i * gap_us)


def best_of(repeat: int, fn: Callable[[], int]) -> tuple[float, int]:
    best = float("inf")
    count = 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        count = fn()
        best = min(best, time.perf_counter() - t0)
    return best, count


def decoder_only(chunks: list[bytes]) -> int:
    decoder = StreamDecoder()
    frames = 0
    for chunk in chunks:
        for item in decoder.feed(chunk):
            if isinstance(item, Frame):
                frames += 1
    return frames


def replay_session(transport: ReplayTransport) -> int:
    """Drive an opened replay transport through a Session; the number of events."""
    session = Session(clock=lambda: transport.timestamp_us // 1000, software="bench")
    events = 0
    read, receive, next_event = transport.read, session.receive_data, session.next_event
    try:
        while True:
            data = read(1.0)
            if data:
                receive(data)
                while next_event() is not None:
                    events += 1
    except EndOfCapture:
        pass
    return events


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=100_000, help="rating frames (default 100000)")
    ap.add_argument("--repeat", type=int, default=3, help="best of (default 3)")
    ap.add_argument(
        "--realtime-chunks", type=int, default=500, help="real-time run: chunks (default 500)"
    )
    ap.add_argument("--gap-ms", type=float, default=5.0, help="real-time run: gap (default 5 ms)")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ratings.pcapng"
        reports = [hello_report(), *rating_reports(args.frames)]
        t0 = time.perf_counter()
        write_capture(path, reports, gap_us=10_000)
        written = time.perf_counter() - t0
        size = path.stat().st_size
        n_frames = len(reports)  # one frame per report
        print(
            f"capture: {args.frames:,} rating frames + hello in {len(reports):,} 64-byte "
            f"chunks, one device; {size:,} bytes on file (written in {written:.2f} s)"
        )

        t0 = time.perf_counter()
        chunks = [c.data for c in read_capture(path)]
        t_read = time.perf_counter() - t0
        assert chunks == reports

        t_dec, frames = best_of(args.repeat, lambda: decoder_only(chunks))
        assert frames == n_frames

        url = replay_url(path, speed=0)
        t_open = 0.0
        t_loop = float("inf")

        def replay_run() -> int:
            nonlocal t_open, t_loop
            transport = ReplayTransport(url)
            t = time.perf_counter()
            transport.open()
            t_open = time.perf_counter() - t
            t = time.perf_counter()
            events = replay_session(transport)
            t_loop = min(t_loop, time.perf_counter() - t)
            return events

        t_replay, events = best_of(args.repeat, replay_run)
        assert events == n_frames, events  # a Connected, then one Rating per frame

        def cli_run() -> int:
            with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
                rc = cli_main(["replay", str(path), "--json"])
            assert rc == 0
            return n_frames

        with contextlib.redirect_stderr(io.StringIO()):
            t_cli, _ = best_of(1, cli_run)

        print(f"file read (dpkt pcapng blocks, read_capture): {t_read:.2f} s")
        print()
        print(f"{'run':<58} {'time':>8} {'frames/s':>10} {'vs (a)':>7}")
        rows = [
            ("(a) baseline: StreamDecoder alone, same 64-byte chunks", t_dec),
            ("(b) replay:// + Session, loop only (file already read)", t_loop),
            ("(b') replay:// + Session incl. open (file read)", t_replay),
            ("(c) `ratepad replay FILE --json` (read, print to null)", t_cli),
        ]
        for name, t in rows:
            print(f"{name:<58} {t:>7.3f}s {n_frames / t:>10,.0f} {t / t_dec:>6.2f}x")
        print(f"    (b) open alone: {t_open:.2f} s")

        # -- real time -------------------------------------------------------------------------
        rt_path = Path(tmp) / "realtime.pcapng"
        gap_us = int(args.gap_ms * 1000)
        write_capture(rt_path, [hello_report(), *rating_reports(args.realtime_chunks - 1)], gap_us)
        transport = ReplayTransport(replay_url(rt_path, speed=1))
        transport.open()
        t0 = time.monotonic()
        events = replay_session(transport)
        took = time.monotonic() - t0
        late_ms = sorted(x * 1000 for x in transport.lateness)
        expected = (args.realtime_chunks - 1) * gap_us / 1e6
        median = statistics.median(late_ms)
        p99 = late_ms[min(len(late_ms) - 1, int(len(late_ms) * 0.99))]
        print()
        print(
            f"real time (speed 1): {len(late_ms)} chunks {args.gap_ms:g} ms apart, {events} "
            f"events in {took:.3f} s (expected {expected:.3f} s)"
        )
        print(
            f"    lateness: median {median:.3f} ms, p99 {p99:.3f} ms, max {late_ms[-1]:.3f} ms "
            f"— target median <= 1 ms: {'met' if median <= 1.0 else 'MISSED'}"
        )


if __name__ == "__main__":
    main()
