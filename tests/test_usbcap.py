"""Real USB captures: Linux usbmon (LINKTYPE_USB_LINUX 189, _MMAPPED 220) and Windows USBPcap
(249), built here as the kernel and USBPcap write them (capture/usb.py documents the headers),
read by `ratepad decode`, `replay://` and tshark with the generated dissector.

Each capture holds the keypad (bus 1, address 5) enumerating (its device descriptor), a mouse
on the same bus with interrupt traffic of its own, and the keypad's link both ways: the host's
host_hello, time_sync and ACK out (three frames in one report), the keypad's hello and two
ratings in, cut into 64-byte reports (each rating is split across two reports).
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import dpkt
import pytest

import ratepad
from ratepad.capture.pcapng import CaptureWriter, scan_capture
from ratepad.capture.usb import (
    LINKTYPE_USB_LINUX,
    LINKTYPE_USB_LINUX_MMAPPED,
    LINKTYPE_USBPCAP,
    XFER_CONTROL,
    XFER_INTERRUPT,
    device_descriptor,
    usbmon_packet,
    usbpcap_packet,
)
from ratepad.cli.capture import replay_url
from ratepad.transports import to_reports
from ratepad.wire import codec
from ratepad.wire.session import Session
from ratepad.wire.stream import Frame, StreamDecoder

ROOT = Path(__file__).resolve().parents[1]
LUA = ROOT / "wireshark" / "ratepad.lua"
T0 = 1_790_000_000_000_000
KINDS = {"usbmon": LINKTYPE_USB_LINUX, "usbmon_mmapped": LINKTYPE_USB_LINUX_MMAPPED}
KINDS["usbpcap"] = LINKTYPE_USBPCAP


def hello() -> bytes:
    return codec.encode(
        codec.Hello(
            protocol_version=codec.PROTOCOL_VERSION,
            schema_fingerprint=codec.SCHEMA_FINGERPRINT,
            key_count=5,
            capabilities=codec.Capabilities(0),
            journal_capacity=1000,
            journal_used=2,
            boot_count=1,
            uptime_ms=100,
            serial="RP-USB-1",
            firmware_version="0.1.0",
            board="pico",
            acked_seq=0,
        ),
        1,
        codec.HeaderFlags.RESPONSE,
    )


def rating(seq: int, score: int) -> bytes:
    return codec.encode(
        codec.Rating(
            journal_seq=seq,
            boot_id=1,
            uptime_ms=1000 + seq,
            epoch_ms=1_790_000_000_000 + seq,
            score=score,
            key_count=5,
            prompt_id=0,
            flags=codec.RatingFlags.UNPROMPTED,
            staff_id="S001",
        ),
        seq + 1,
    )


IN_STREAM = hello() + rating(1, 4) + rating(2, 2)
OUT_STREAM = Session(clock=lambda: 1_790_000_000_000, software="t").open() + codec.encode(
    codec.Ack(2), 2
)


def urbs(kind: str, keypad_descriptor: bool = True) -> list[tuple[int, bytes]]:
    """(timestamp_us, packet) of the whole capture."""
    out: list[tuple[int, bytes]] = []
    t = T0

    def add(dev: int, ep: int, xfer: int, completion: bool, data: bytes = b"") -> None:
        nonlocal t
        t += 1000
        if kind == "usbpcap":
            stage = 3 if xfer == XFER_CONTROL else None
            pkt = usbpcap_packet(
                bus=1,
                address=dev,
                endpoint=ep,
                transfer=xfer,
                completion=completion,
                data=data,
                irp_id=t,
                stage=stage,
            )
        else:
            pkt = usbmon_packet(
                bus=1,
                address=dev,
                endpoint=ep,
                transfer=xfer,
                submit=not completion,
                data=data,
                urb_id=t,
                timestamp_us=t,
                mmapped=kind == "usbmon_mmapped",
            )
        out.append((t, pkt))

    # enumeration: GET_DESCRIPTOR(device) of the mouse and of the keypad
    for dev, vid_pid in ((3, (0x046D, 0xC077)), (5, None)):
        if dev == 5 and not keypad_descriptor:
            continue
        add(dev, 0x80, XFER_CONTROL, False)
        add(dev, 0x80, XFER_CONTROL, True, device_descriptor(*(vid_pid or ())))
    ins = to_reports(IN_STREAM)
    outs = to_reports(OUT_STREAM)
    assert len(ins) == 3 and len(outs) >= 1
    add(5, 0x81, XFER_INTERRUPT, False)  # the host waits for a report (no data)
    for report in outs[:-1]:
        add(5, 0x01, XFER_INTERRUPT, False, report)
        add(5, 0x01, XFER_INTERRUPT, True)
    add(3, 0x81, XFER_INTERRUPT, True, b"\x00\x05\xfb\x00")  # the mouse moves
    for report in ins:
        add(5, 0x81, XFER_INTERRUPT, True, report)
        add(5, 0x81, XFER_INTERRUPT, False)
    add(3, 0x81, XFER_INTERRUPT, True, b"\x01\x00\x00\x00")
    add(5, 0x01, XFER_INTERRUPT, False, outs[-1])
    add(5, 0x01, XFER_INTERRUPT, True)
    return out


def write_capture(
    path: Path, kind: str, pcap: bool = False, keypad_descriptor: bool = True
) -> Path:
    packets = urbs(kind, keypad_descriptor)
    if pcap:
        buf = io.BytesIO()
        w = dpkt.pcap.Writer(buf, linktype=KINDS[kind])
        for ts, pkt in packets:
            w.writepkt(pkt, ts / 1e6)
        path.write_bytes(buf.getvalue())
        return path
    with CaptureWriter(path, application="test") as writer:
        index = writer.add_device(
            "usbmon1" if kind != "usbpcap" else "USBPcap1", link_type=KINDS[kind]
        )
        for ts, pkt in packets:
            writer.write_packet(index, pkt, ts)
    return path


def frames(stream: bytes) -> list[dict[str, Any]]:
    decoder = StreamDecoder()
    out = []
    for item in [*decoder.feed(stream), *decoder.finish()]:
        assert isinstance(item, Frame)
        name, fields = codec.message_fields(item.message)
        out.append({"type": name, **fields})
    return out


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ratepad", *args], capture_output=True, text=True, timeout=60
    )


CASES = [(k, False) for k in KINDS] + [("usbmon", True), ("usbpcap", True)]


@pytest.mark.parametrize(("kind", "pcap"), CASES)
def test_decode_picks_the_keypads_interrupt_transfers(
    tmp_path: Path, kind: str, pcap: bool
) -> None:
    path = write_capture(tmp_path / f"{kind}.pcap{'' if pcap else 'ng'}", kind, pcap)
    out = run("decode", str(path), "--json")
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert {(x["device"], x["direction"]) for x in lines} == {("1.5", "in"), ("1.5", "out")}
    got_in = [
        {k: v for k, v in x.items() if k not in ("device", "direction")}
        for x in lines
        if x["direction"] == "in"
    ]
    got_out = [
        {k: v for k, v in x.items() if k not in ("device", "direction")}
        for x in lines
        if x["direction"] == "out"
    ]
    assert got_in == frames(IN_STREAM)
    assert got_out == frames(OUT_STREAM)
    assert [x["type"] for x in got_in] == ["hello", "rating", "rating"]
    text = run("decode", str(path))
    assert text.returncode == 0 and "# 1.5 in" in text.stdout and 'serial="RP-USB-1"' in text.stdout


@pytest.mark.parametrize("kind", list(KINDS))
def test_replay_of_a_usb_capture(tmp_path: Path, kind: str) -> None:
    path = write_capture(tmp_path / f"{kind}.pcapng", kind)
    out = run("replay", str(path), "--json")
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert lines[0]["event"] == "connected" and lines[0]["serial"] == "RP-USB-1"
    assert [(x["seq"], x["score"]) for x in lines if x.get("event") == "rating"] == [(1, 4), (2, 2)]
    assert lines[-1]["summary"]["device"] == "1.5"
    with ratepad.open(replay_url(path)) as kp:
        assert kp.info is not None and kp.info.serial == "RP-USB-1"


def test_without_the_descriptor_the_device_is_named(tmp_path: Path) -> None:
    path = write_capture(tmp_path / "nodesc.pcapng", "usbmon", keypad_descriptor=False)
    out = run("decode", str(path))
    assert out.returncode == 2
    line = out.stderr.strip()
    assert "--device BUS.ADDR" in line and "1.5" in line and "1.3" in line, line
    assert len(out.stderr.strip().splitlines()) == 1
    out = run("decode", str(path), "--device", "1.5", "--json")
    assert out.returncode == 0, out.stderr
    assert len(out.stdout.splitlines()) == len(frames(IN_STREAM)) + len(frames(OUT_STREAM))
    out = run("replay", str(path), "--device", "1.5", "--json")
    assert out.returncode == 0, out.stderr
    assert scan_capture(path, "1.3").chunks[0].data == b"\x00\x05\xfb\x00"


def test_a_capture_cut_mid_block_decodes_what_came_before(tmp_path: Path) -> None:
    whole = write_capture(tmp_path / "whole.pcapng", "usbmon").read_bytes()
    cut = tmp_path / "cut.pcapng"
    last = 28 + 48 + 4  # the last block: an EPB with the usbmon header of a completion
    cut.write_bytes(whole[: -last - 60])  # the block before it (the ACK's report) is cut
    out = run("decode", str(cut), "--json")
    assert out.returncode == 2
    types = [json.loads(line)["type"] for line in out.stdout.splitlines()]
    assert types.count("rating") == 2 and "ack" not in types
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "cut short" in lines[0] and "decoded what came before" in lines[0]
    out = run("replay", str(cut), "--device", "1.5", "--json")  # exits as decode does
    ratings = [line for line in out.stdout.splitlines() if '"event": "rating"' in line]
    assert out.returncode == 2 and len(ratings) == 2, out.stdout + out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "cut short" in lines[0] and "replayed what came before" in lines[0]


TSHARK = shutil.which("tshark")


@pytest.mark.skipif(TSHARK is None, reason="tshark is not installed (`make setup` installs it)")
@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("descriptor", [True, False], ids=["by-vid-pid", "heuristic"])
def test_tshark_decodes_the_keypad_in_usb_captures(
    tmp_path: Path, kind: str, descriptor: bool
) -> None:
    path = write_capture(tmp_path / f"{kind}.pcapng", kind, keypad_descriptor=descriptor)
    assert TSHARK is not None
    out = subprocess.run(
        [
            TSHARK,
            "-X",
            f"lua_script:{LUA}",
            "-r",
            str(path),
            "-2",
            "-T",
            "fields",
            "-e",
            "ratepad.direction",
            "-e",
            "ratepad.type",
            "-Y",
            "ratepad",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    seen = []
    for line in out.stdout.splitlines():
        direction, types = line.split("\t")
        for t in types.split(","):
            if t:
                seen.append((direction.split(",")[0], int(t, 0)))
    assert [t for d, t in seen if d == "in"] == type_ids(IN_STREAM), seen
    assert [t for d, t in seen if d == "out"] == type_ids(OUT_STREAM), seen


def type_ids(stream: bytes) -> list[int]:
    decoder = StreamDecoder()
    return [
        i.message.type_id
        for i in [*decoder.feed(stream), *decoder.finish()]
        if isinstance(i, Frame)
    ]


def test_the_dissector_knows_the_keypads_usb_identity() -> None:
    from ratepad.transports.usbid import PID, VID

    assert f"USB_VID, USB_PID, REPORT_SIZE = {VID:#06x}, {PID:#06x}, 64" in LUA.read_text()
