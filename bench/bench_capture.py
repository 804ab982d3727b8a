"""Decoding captures: `ratepad decode FILE.pcapng` against the same frames from a raw stream.

The capture: one keypad's hello, then N rating frames (default 100,000), each in its own 64-byte
HID report (zero-padded, as a USB capture records them), 10 ms apart: once in ratepad's pcapng
(written with CaptureWriter, dpkt blocks), once as a Linux usbmon capture (LINKTYPE_USB_LINUX),
and the same stream bytes as a raw file. All in the same run:

(a) baseline: `ratepad decode RAW --json` (the raw stream, no capture format);
(b) `ratepad decode FILE.pcapng --json` (target: within 2x of (a));
(c) `ratepad decode USBMON.pcapng --json`;
(d) text output of (a) and (b) (target: as fast as JSON);
(e) tshark with the generated dissector on FILE.pcapng (target: (b) faster).

Each `ratepad decode` runs in-process, output to /dev/null; best of --repeat. Times are CPU
seconds (this process's, tshark's as a child), which a shared machine disturbs less than wall
time; wall times are printed too.

    python bench/bench_capture.py [--frames 100000] [--repeat 3] [--no-tshark]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from ratepad.capture.pcapng import CaptureWriter
from ratepad.capture.usb import (
    LINKTYPE_USB_LINUX,
    XFER_INTERRUPT,
    device_descriptor,
    usbmon_packet,
)
from ratepad.cli.main import main as cli_main
from ratepad.transports import to_reports
from ratepad.wire import codec

ROOT = Path(__file__).resolve().parents[1]
LUA = ROOT / "wireshark" / "ratepad.lua"


def frames(n: int) -> list[bytes]:
    hello = codec.encode(
        codec.Hello(
            codec.PROTOCOL_VERSION,
            codec.SCHEMA_FINGERPRINT,
            5,
            codec.Capabilities(0),
            20000,
            0,
            1,
            100,
            "B1",
            "0.1.0",
            "bench",
            0,
        ),
        1,
        codec.HeaderFlags.RESPONSE,
    )
    out = [hello]
    for i in range(1, n + 1):
        rating = codec.Rating(
            i, 1, 1000 + i, 1_790_000_000_000 + i, i % 5 + 1, 5, 0, codec.RatingFlags(0), "S001"
        )
        out.append(codec.encode(rating, (i + 1) & 0xFFFF))
    return out


def write_files(folder: Path, n: int) -> tuple[Path, Path, Path]:
    reports = [to_reports(f)[0] for f in frames(n)]
    raw = folder / "stream.bin"
    raw.write_bytes(b"".join(reports))
    own = folder / "capture.pcapng"
    usbmon = folder / "usbmon.pcapng"
    t0 = 1_790_000_000_000_000
    with CaptureWriter(own, application="bench") as w, CaptureWriter(usbmon) as u:
        index = u.add_device("usbmon1", link_type=LINKTYPE_USB_LINUX)
        u.write_packet(
            index,
            usbmon_packet(
                bus=1,
                address=5,
                endpoint=0x80,
                transfer=2,
                submit=False,
                data=device_descriptor(),
            ),
            t0,
        )
        for i, r in enumerate(reports):
            ts = t0 + i * 10_000
            w.write("B1", "in", r, ts, flush=False)
            pkt = usbmon_packet(
                bus=1, address=5, endpoint=0x81, transfer=XFER_INTERRUPT, submit=False, data=r
            )
            u.write_packet(index, pkt, ts)
    return raw, own, usbmon


WALL: dict[str, float] = {}


def decode(path: Path, *extra: str) -> float:
    """CPU seconds of one in-process `ratepad decode` (its wall time goes to WALL)."""
    with open(os.devnull, "w") as null, contextlib.redirect_stdout(null):
        t0, c0 = time.perf_counter(), time.process_time()
        rc = cli_main(["decode", str(path), *extra])
        cpu, wall = time.process_time() - c0, time.perf_counter() - t0
    assert rc == 0, rc
    key = f"{path.name} {' '.join(extra)}"
    WALL[key] = min(WALL.get(key, wall), wall)
    return cpu


def best(repeat: int, fn: object, *args: str) -> float:
    return min(fn(*args) for _ in range(repeat))  # type: ignore[operator]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-tshark", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        raw, own, usbmon = write_files(Path(tmp), args.frames)
        print(
            f"{args.frames + 1:,} frames: raw stream {raw.stat().st_size / 1e6:.1f} MB, "
            f"ratepad pcapng {own.stat().st_size / 1e6:.1f} MB, "
            f"usbmon pcapng {usbmon.stat().st_size / 1e6:.1f} MB"
        )
        r = {
            "(a) raw stream --json": best(args.repeat, decode, raw, "--json"),
            "(b) ratepad pcapng --json": best(args.repeat, decode, own, "--json"),
            "(c) usbmon pcapng --json": best(args.repeat, decode, usbmon, "--json"),
            "(d) raw stream, text": best(args.repeat, decode, raw),
            "(d) ratepad pcapng, text": best(args.repeat, decode, own),
        }
        tshark = shutil.which("tshark")
        if tshark and not args.no_tshark:
            import resource

            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.perf_counter()
            command = [tshark, "-X", f"lua_script:{LUA}", "-r", str(own)]
            subprocess.run(
                [*command, "-T", "fields", "-e", "ratepad.type"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                check=True,
            )
            WALL["tshark"] = time.perf_counter() - t0
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            r["(e) tshark + generated dissector, same pcapng"] = cpu
        base = r["(a) raw stream --json"]
        print("CPU seconds (best of the runs):")
        for name, t in r.items():
            print(f"{name:<48} {t:7.2f} s  {args.frames / t:>9,.0f} frames/s  {t / base:5.2f}x (a)")
        print("wall seconds:", ", ".join(f"{k}: {v:.2f}" for k, v in WALL.items()))
        b = r["(b) ratepad pcapng --json"]
        print(
            f"target (b) within 2x of (a): {'met' if b <= 2 * base else 'MISSED'} ({b / base:.2f}x)"
        )
        text = r["(d) ratepad pcapng, text"]
        print(f"text vs JSON output: {text / b:.2f}x ({'met' if text <= 1.1 * b else 'MISSED'})")
        if "(e) tshark + generated dissector, same pcapng" in r:
            e = r["(e) tshark + generated dissector, same pcapng"]
            print(f"target (b) faster than tshark: {'met' if b < e else 'MISSED'} ({e / b:.1f}x)")


if __name__ == "__main__":
    main()
