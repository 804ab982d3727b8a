# Runtime of the generated firmware codec (firmware/rpfw/codec.py), kept as a real module so it
# is linted and tested directly. MicroPython: struct, binascii.crc32, preallocated buffers.
# The generator copies the part after "--- head ---" in front of the generated encoders and the
# part after "--- tail ---" behind the generated message tables; what comes before "--- head ---"
# only stands in for names the generated part defines, so that this file runs on its own.
import struct
from binascii import crc32, hexlify, unhexlify

from micropython import const

# --- stand-ins (not emitted): the generated codec defines these ---
PROTOCOL_VERSION = 1
HEADER_SIZE = 5
MAX_FRAME = 300
_MESSAGES: dict = {}
_BY_NAME: dict = {}
_M_HEADER_FLAGS: tuple = ()
# --- head ---
_BODY = bytearray(MAX_FRAME)
_BODY_MV = memoryview(_BODY)
_RX = bytearray(MAX_FRAME)
_RX_MV = memoryview(_RX)


def cobs_encode_into(src, n, out):
    # COBS-encode src[0:n] into out, append the 0x00 delimiter; returns the frame length.
    code_at = 0
    o = 1
    code = 1
    for i in range(n):
        b = src[i]
        if b:
            out[o] = b
            o += 1
            code += 1
            if code == 0xFF and i + 1 < n:
                out[code_at] = code  # a full block; the next one starts here
                code_at = o
                o += 1
                code = 1
        else:
            out[code_at] = code
            code_at = o
            o += 1
            code = 1
    out[code_at] = code
    out[o] = 0
    return o + 1


def cobs_decode_into(src, n, out):
    # Decode COBS bytes src[0:n] (no delimiter) into out; returns the length, -1 if malformed.
    i = 0
    o = 0
    while i < n:
        code = src[i]
        end = i + code
        if code == 0 or end > n:
            return -1
        i += 1
        while i < end:
            b = src[i]
            if b == 0:
                return -1
            out[o] = b
            o += 1
            i += 1
        if code != 0xFF and i < n:
            out[o] = 0
            o += 1
    return o


def _put_text(buf, off, text, max_len):
    n = len(text)
    if n > max_len:
        raise ValueError("text too long")
    buf[off] = n
    buf[off + 1 : off + 1 + n] = text
    return off + 1 + n


def _frame(out, type_id, seq, hflags, n):
    # Header into _BODY[0:5], CRC after the payload, then COBS into out.
    _BODY[0] = PROTOCOL_VERSION
    _BODY[1] = hflags
    _BODY[2] = type_id
    _BODY[3] = seq & 0xFF
    _BODY[4] = (seq >> 8) & 0xFF
    struct.pack_into("<I", _BODY, n, crc32(_BODY_MV[0:n]))
    return cobs_encode_into(_BODY, n + 4, out)


# --- tail ---
_KIND_UINT = const(0)
_KIND_BOOL = const(1)
_KIND_ENUM = const(2)
_KIND_FLAGS = const(3)
_KIND_MAYBE = const(4)
_KIND_TEXT = const(5)


def unframe(src, n):
    # Check one frame's COBS bytes src[0:n] (delimiter excluded), decoded into the shared
    # receive buffer. Returns (type_id, seq, hflags, payload memoryview); raises ValueError.
    m = cobs_decode_into(src, n, _RX)
    if m < 0:
        raise ValueError("cobs")
    if m < HEADER_SIZE + 4:
        raise ValueError("short")
    if crc32(_RX_MV[0:m]) != 0x2144DF1C:
        raise ValueError("crc")
    if _RX[0] != PROTOCOL_VERSION:
        raise ValueError("version")
    return _RX[2], _RX[3] | (_RX[4] << 8), _RX[1], _RX_MV[HEADER_SIZE : m - 4]


def decode_payload(type_id, payload):
    # Values of a known message as a list (enums and flags as ints, texts as str); None for an
    # unknown type. Raises ValueError on a malformed field.
    spec = _MESSAGES.get(type_id)
    if spec is None:
        return None
    p = payload
    if len(p) < spec[1]:
        p = bytes(p) + bytes(spec[1] - len(p))
    vals = []
    o = 0
    for f in spec[2]:
        kind = f[1]
        if kind == _KIND_TEXT:
            n = p[o]
            if n > f[3]:
                raise ValueError("payload")
            vals.append(str(bytes(p[o + 1 : o + 1 + n]), "utf-8"))
            o += 1 + n
            continue
        v = struct.unpack_from(f[2], p, o)[0]
        o += f[3]
        if kind == _KIND_BOOL:
            v = v != 0
        elif kind == _KIND_MAYBE and v == (1 << (8 * f[3])) - 1:
            v = None
        vals.append(v)
    return vals


def _enum_name(members, v):
    for name, value in members:
        if value == v:
            return name
    return v


def _flag_names(members, v):
    names = []
    bit = 0
    while v >> bit:
        if (v >> bit) & 1:
            name = "bit%d" % bit
            for n, value in members:
                if value == 1 << bit:
                    name = n
            names.append(name)
        bit += 1
    return names


def decode_frame(data):
    # Test entry point: (type_name, fields) of one complete frame incl. delimiter.
    n = len(data)
    if n < 1 or data[n - 1] != 0:
        raise ValueError("cobs")
    type_id, seq, hflags, payload = unframe(data, n - 1)
    spec = _MESSAGES.get(type_id)
    if spec is None:
        return "unknown", {"type_id": type_id, "payload": str(hexlify(payload), "ascii")}
    try:
        vals = decode_payload(type_id, payload)
    except (UnicodeError, IndexError):
        raise ValueError("payload")
    fields = {}
    for f, v in zip(spec[2], vals):
        if f[1] == _KIND_ENUM:
            v = _enum_name(f[4], v)
        elif f[1] == _KIND_FLAGS:
            v = _flag_names(f[4], v)
        fields[f[0]] = v
    return spec[0], fields


def header_of(data):
    # Test helper: (seq, header flag names) of one complete frame.
    type_id, seq, hflags, payload = unframe(data, len(data) - 1)
    return seq, _flag_names(_M_HEADER_FLAGS, hflags)


def _value_in(f, v):
    kind = f[1]
    if kind == _KIND_ENUM and isinstance(v, str):
        for name, value in f[4]:
            if name == v:
                return value
        raise ValueError("unknown enum name")
    if kind == _KIND_FLAGS:
        bits = 0
        for name in v:
            found = False
            for n, value in f[4]:
                if n == name:
                    bits |= value
                    found = True
            if not found:
                if name[:3] != "bit":
                    raise ValueError("unknown flag")
                bits |= 1 << int(name[3:])
        return bits
    if kind == _KIND_MAYBE:
        return (1 << (8 * f[3])) - 1 if v is None else v
    if kind == _KIND_BOOL:
        return 1 if v else 0
    return v


def encode_frame(type_name, fields, seq=0, flags=()):
    # Test entry point: the complete frame of a message given as plain values.
    hflags = 0
    for name in flags:
        hflags |= _value_in(("", _KIND_FLAGS, "", 1, _M_HEADER_FLAGS), [name])
    if type_name == "unknown":
        type_id = fields["type_id"]
        payload = unhexlify(fields["payload"])
        _BODY[5 : 5 + len(payload)] = payload
        n = 5 + len(payload)
    else:
        type_id = _BY_NAME[type_name]
        n = 5
        for f in _MESSAGES[type_id][2]:
            v = _value_in(f, fields[f[0]])
            if f[1] == _KIND_TEXT:
                n = _put_text(_BODY, n, v.encode(), f[3])
            else:
                struct.pack_into(f[2], _BODY, n, v)
                n += f[3]
    out = bytearray(MAX_FRAME + 8)
    m = _frame(out, type_id, seq, hflags, n)
    return bytes(out[:m])
