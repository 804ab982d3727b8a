"""Decode a stream of rating frames three ways and compare, all in one run.

(a) construct: the reference decoder (protocol/reference.py: COBS + CRC + construct parse);
(b) the generated host codec through the sans-IO StreamDecoder, fed 64 KiB at a time (every
    frame becomes a typed Rating with its offset, sequence and header flags, checked by CRC);
(c) the floor: zlib.crc32 over the stream plus struct.iter_unpack over the same bytes with the
    rating's fixed-field layout (28-byte records, so ~1.6 records per 44-byte frame): C code that
    touches every byte and builds a tuple per record, but finds no frame and decodes nothing.

Targets: (b) at least 30x faster than (a), and within 4x of (c).

    python bench/bench_decode.py [--frames 1000000] [--construct-frames N]

(a) can be timed on a subset (--construct-frames) and is reported per frame; the speed-up is
computed per frame.
"""

from __future__ import annotations

import argparse
import random
import struct
import time
import zlib

from ratepad.wire import codec
from ratepad.wire.stream import Frame, StreamDecoder
from ratepad_protocol import reference


def make_stream(n: int, seed: int = 1) -> tuple[bytes, list[int]]:
    rng = random.Random(seed)
    staff = [f"S{i:03d}" for i in range(50)]
    frames = []
    for seq in range(1, n + 1):
        msg = codec.Rating(
            journal_seq=seq,
            boot_id=rng.randrange(1, 1000),
            uptime_ms=rng.randrange(1 << 32),
            epoch_ms=None if rng.random() < 0.1 else 1_790_000_000_000 + rng.randrange(10**10),
            score=rng.randrange(1, 6),
            key_count=5,
            prompt_id=rng.randrange(1 << 32),
            flags=codec.RatingFlags(rng.choice((0, 0, 0, 1, 2))),
            staff_id=rng.choice(staff),
        )
        frames.append(codec.encode(msg, seq & 0xFFFF))
    return b"".join(frames), [len(f) for f in frames]


def time_it(fn, repeat: int = 3) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    best = float("inf")
    result = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=1_000_000)
    ap.add_argument(
        "--construct-frames",
        type=int,
        default=None,
        help="time construct on this many frames (default: all)",
    )
    args = ap.parse_args()
    n = args.frames
    stream, lengths = make_stream(n)
    print(f"stream: {n:,} rating frames, {len(stream):,} bytes ({len(stream) / n:.1f} bytes/frame)")

    chunk = 65536  # read-sized pieces, as a reader of a file or socket would feed them
    pieces = [stream[i : i + chunk] for i in range(0, len(stream), chunk)]

    def host() -> int:
        decoder = StreamDecoder()
        count = 0
        for piece in pieces:
            for item in decoder.feed(piece):
                count += type(item) is Frame
        assert count == n and not decoder.finish()
        return count

    record = struct.Struct("<IIIQBBIH")  # the rating's fixed fields, as a stand-in record
    usable = len(stream) - len(stream) % record.size

    def floor() -> int:
        crc = zlib.crc32(stream)
        count = 0
        for _ in struct.iter_unpack(record.format, memoryview(stream)[:usable]):
            count += 1
        return count + (crc & 0)

    m = args.construct_frames or n
    sub = stream[: sum(lengths[:m])]

    def construct() -> int:
        count = 0
        for part in sub.split(b"\x00")[:-1]:
            reference.decode_frame(part + b"\x00")
            count += 1
        assert count == m
        return count

    t_host, _ = time_it(host)
    t_floor, records = time_it(floor)
    t_con, _ = time_it(construct, repeat=1)
    per = {"construct": t_con / m, "host codec": t_host / n, "floor": t_floor / n}
    print(
        f"(a) construct reference : {t_con:8.3f} s for {m:,} frames  "
        f"{per['construct'] * 1e6:8.2f} us/frame  {1 / per['construct']:12,.0f} frames/s"
    )
    print(
        f"(b) generated host codec: {t_host:8.3f} s for {n:,} frames  "
        f"{per['host codec'] * 1e6:8.2f} us/frame  {1 / per['host codec']:12,.0f} frames/s"
    )
    print(
        f"(c) floor (iter_unpack+crc32): {t_floor:8.3f} s ({records:,} records)  "
        f"{per['floor'] * 1e6:8.2f} us/frame"
    )
    speedup = per["construct"] / per["host codec"]
    ratio = per["host codec"] / per["floor"]
    print(
        f"host codec vs construct: {speedup:6.1f}x faster   (target >= 30x: "
        f"{'met' if speedup >= 30 else 'MISSED'})"
    )
    print(
        f"host codec vs floor:     {ratio:6.2f}x slower   (target <= 4x: "
        f"{'met' if ratio <= 4 else 'MISSED'})"
    )


if __name__ == "__main__":
    main()
