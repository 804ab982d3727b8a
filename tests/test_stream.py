"""The sans-IO stream decoder: resynchronisation, bad spans as values, bounded memory."""

from __future__ import annotations

import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ratepad.errors import FrameError
from ratepad.wire import codec
from ratepad.wire.stream import BadSpan, Frame, StreamDecoder, decode_stream

from strategies import messages


def rating(seq: int) -> bytes:
    return codec.encode_frame(
        "rating",
        {
            "journal_seq": seq,
            "boot_id": 1,
            "uptime_ms": seq * 10,
            "epoch_ms": None,
            "score": 1 + seq % 5,
            "key_count": 5,
            "prompt_id": seq,
            "flags": [],
            "staff_id": "S001",
        },
    )


def journal_seqs(items: list[Frame | BadSpan]) -> list[int]:
    return [i.message.journal_seq for i in items if isinstance(i, Frame)]  # type: ignore[union-attr]


def test_intact_frames_survive_garbage_truncation_and_corruption_between_them() -> None:
    rng = random.Random(7)
    stream = bytearray()
    expected_good = []
    expected_bad_offsets = []
    for seq in range(1, 400):
        frame = rating(seq)
        damage = rng.random()
        if damage < 0.15:  # garbage with no delimiter, glued to the front of an intact frame
            expected_bad_offsets.append(len(stream))
            stream += bytes(rng.randrange(1, 256) for _ in range(rng.randrange(1, 40)))
        elif damage < 0.30:  # a truncated frame (its tail and delimiter lost)
            expected_bad_offsets.append(len(stream))
            stream += frame[: rng.randrange(1, len(frame) - 1)]
        elif damage < 0.45:  # a corrupted frame in place of this one
            bad = bytearray(frame)
            bad[rng.randrange(len(bad) - 1)] ^= 1 << rng.randrange(8)
            if 0 in bad[:-1]:
                bad = bytearray(frame)
                bad[3] ^= 0x10
            expected_bad_offsets.append(len(stream))
            stream += bad
            continue
        expected_good.append((len(stream), seq))
        stream += frame
    items = decode_stream(bytes(stream))
    frames = [(i.offset, i.message.journal_seq) for i in items if isinstance(i, Frame)]  # type: ignore[union-attr]
    # every intact frame is recovered, in order, at the right offset (a truncated frame glued to
    # the next one is recovered from the frame's own start)
    assert [seq for _, seq in frames] == [seq for _, seq in expected_good]
    assert frames == expected_good
    bad_offsets = [i.offset for i in items if isinstance(i, BadSpan)]
    assert bad_offsets == expected_bad_offsets


def test_byte_at_a_time_gives_the_same_items_as_all_at_once() -> None:
    data = b"\x05junk" + rating(1) + rating(2)[:9] + rating(3) + b"\x00\x00" + rating(4)[:-1]
    whole = decode_stream(data)
    dec = StreamDecoder()
    pieces: list[Frame | BadSpan] = []
    for b in data:
        pieces.extend(dec.feed(bytes([b])))
    pieces.extend(dec.finish())
    assert pieces == whole
    assert journal_seqs(whole) == [1, 3]
    assert whole[-1] == BadSpan(
        whole[-1].offset, len(rating(4)) - 1, "truncated", "input ended inside a frame"
    )


def test_a_run_without_delimiters_is_bounded_and_the_frame_after_it_recovered() -> None:
    dec = StreamDecoder()
    out: list[Frame | BadSpan] = []
    for _ in range(1000):
        out.extend(dec.feed(b"\x01" * 1000))
        assert len(dec._pending) < codec.MAX_FRAME_BYTES  # bounded memory
    out.extend(dec.feed(rating(9)))
    assert [type(i) for i in out] == [BadSpan, Frame]
    assert out[0] == BadSpan(0, 1_000_000, "too_long", out[0].detail)  # type: ignore[union-attr]
    assert journal_seqs(out) == [9]


def test_unsupported_protocol_version_is_a_bad_span_of_kind_version() -> None:
    from cobs import cobs

    body = bytearray(cobs.decode(rating(1)[:-1]))
    body[0] = 2
    import zlib

    body[-4:] = zlib.crc32(bytes(body[:-4])).to_bytes(4, "little")
    items = decode_stream(cobs.encode(bytes(body)) + b"\x00")
    assert [(type(i), getattr(i, "kind", None)) for i in items] == [(BadSpan, "version")]


@settings(max_examples=300)
@given(st.binary(max_size=2000), st.lists(st.integers(1, 64), min_size=1, max_size=50))
def test_fuzz_never_raises_and_accounts_for_every_byte(data: bytes, cuts: list[int]) -> None:
    dec = StreamDecoder()
    items: list[Frame | BadSpan] = []
    pos = 0
    i = 0
    while pos < len(data):
        n = cuts[i % len(cuts)]
        items.extend(dec.feed(data[pos : pos + n]))
        pos += n
        i += 1
    items.extend(dec.finish())
    assert items == decode_stream(data)
    end = 0
    for item in items:
        assert item.offset >= end
        if isinstance(item, BadSpan):
            assert item.kind in FrameError.KINDS
            end = item.offset + item.length
        else:
            end = item.offset + len(codec.encode(item.message, item.seq, item.flags))
    assert end <= len(data)


@settings(max_examples=200)
@given(st.lists(messages, min_size=1, max_size=8), st.binary(max_size=30), st.data())
def test_fuzz_frames_with_noise_are_all_recovered(
    msgs: list[tuple[str, dict[str, Any]]], noise: bytes, data: st.DataObject
) -> None:
    frames = [codec.encode_frame(name, fields, seq=i) for i, (name, fields) in enumerate(msgs)]
    stream = b"".join(noise.replace(b"\x00", b"") + b"\x00" + f for f in frames)
    items = decode_stream(stream)
    got = [codec.message_fields(i.message) for i in items if isinstance(i, Frame)]
    assert got == [codec.message_fields(codec.decode_frame(f)[1]) for f in frames]
