"""`ratepad decode` / `ratepad encode` as in the CLI contract, run as a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cobs import cobs

from ratepad.capture.pcapng import CaptureWriter
from ratepad.wire import codec

RATING = {
    "journal_seq": 3,
    "boot_id": 1,
    "uptime_ms": 1005,
    "epoch_ms": None,
    "score": 5,
    "key_count": 5,
    "prompt_id": 2,
    "flags": ["unprompted"],
    "staff_id": "S001",
}


def run(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ratepad", *args],
        input=stdin.decode("latin-1"),
        capture_output=True,
        text=True,
        encoding="latin-1",
        timeout=60,
    )


def json_lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines()]


def test_encode_prints_the_frame_as_hex() -> None:
    out = run("encode", json.dumps({"type": "rating", **RATING}))
    assert out.returncode == 0, out.stderr
    assert bytes.fromhex(out.stdout.strip()) == codec.encode_frame("rating", RATING)


def test_encode_with_seq_and_header_flags() -> None:
    out = run(
        "encode", '{"type": "ack", "journal_seq": 9}', "--seq", "513", "--flags", "retransmit"
    )
    header, msg = codec.decode_frame(bytes.fromhex(out.stdout.strip()))
    assert (header.seq, header.flags, msg) == (513, codec.HeaderFlags.RETRANSMIT, codec.Ack(9))


def test_decode_recovers_frames_around_bad_spans(tmp_path: Path) -> None:
    good = codec.encode_frame("rating", RATING)
    ack = codec.encode_frame("ack", {"journal_seq": 3})
    body = bytearray(cobs.decode(good[:-1]))
    body[10] ^= 0x01  # a payload bit: same length, CRC no longer matches
    corrupt = cobs.encode(bytes(body)) + b"\x00"
    data = b"noise" + good + bytes(corrupt) + ack + good[:7]
    path = tmp_path / "stream.bin"
    path.write_bytes(data)
    out = run("decode", str(path), "--json")
    assert out.returncode == 1  # bad spans were found
    assert out.stderr == ""
    assert json_lines(out.stdout) == [
        {"error": "cobs", "offset": 0, "length": 5},
        {"type": "rating", **RATING},
        {"error": "crc", "offset": 5 + len(good), "length": len(good)},
        {"type": "ack", "journal_seq": 3},
        {"error": "truncated", "offset": 5 + 2 * len(good) + len(ack), "length": 7},
    ]


def test_decode_reads_stdin_and_hex() -> None:
    frame = codec.encode_frame("ack", {"journal_seq": 1})
    assert json_lines(run("decode", "-", "--json", stdin=frame).stdout) == [
        {"type": "ack", "journal_seq": 1}
    ]
    out = run("decode", "--hex", frame.hex())
    assert out.returncode == 0
    assert "ack journal_seq=1" in out.stdout


def test_decode_reads_a_pcapng_capture_per_device_and_direction(tmp_path: Path) -> None:
    path = tmp_path / "c.pcapng"
    prompt = codec.encode_frame("prompt", {"prompt_id": 2, "timeout_ms": 30000, "staff_id": "S1"})
    rating = codec.encode_frame("rating", RATING)
    with CaptureWriter(path) as cap:
        cap.write("K1", "out", prompt, timestamp_us=1)
        cap.write("K1", "in", rating[:20], timestamp_us=2)  # a frame split over two reports
        cap.write("K1", "in", rating[20:], timestamp_us=3)
    out = run("decode", str(path), "--json")
    assert out.returncode == 0, out.stderr
    assert json_lines(out.stdout) == [
        {
            "type": "prompt",
            "prompt_id": 2,
            "timeout_ms": 30000,
            "staff_id": "S1",
            "device": "K1",
            "direction": "out",
        },
        {"type": "rating", **RATING, "device": "K1", "direction": "in"},
    ]


@pytest.mark.parametrize(
    "args",
    [
        ("encode", "{not json"),
        ("encode", "[1, 2]"),
        ("encode", '{"type": "ack"}'),
        ("encode", '{"type": "ack", "journal_seq": -1}'),
        ("encode", '{"type": "nope"}'),
        ("encode", '{"type": "ack", "journal_seq": 1}', "--seq", "70000"),
        ("encode", '{"type": "ack", "journal_seq": 1}', "--flags", "bogus"),
        ("decode", "/no/such/file"),
        ("decode", "--hex", "zz"),
        ("bogus",),
        (),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: tuple[str, ...]) -> None:
    out = run(*args)
    assert out.returncode == 2
    assert out.stdout == ""
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert "Traceback" not in out.stderr


def test_bad_pcapng_is_one_line_and_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "bad.pcapng"
    path.write_bytes(b"\x0a\x0d\x0d\x0a" + b"\xff" * 40)
    out = run("decode", str(path))
    assert out.returncode == 2
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr


def test_version_and_help() -> None:
    assert run("--version").stdout.startswith("ratepad ")
    for cmd in ("decode", "encode"):
        out = run(cmd, "--help")
        assert out.returncode == 0 and "usage:" in out.stdout
