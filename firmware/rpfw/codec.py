# DO NOT EDIT: generated from protocol/ratepad_protocol/schema.py by `make generate`.
# Protocol version 1, schema fingerprint 0xe7202dbd.
# Firmware codec for the ratepad wire protocol. MicroPython: struct + binascii.crc32.
# Frame: COBS(header + payload + CRC-32 LE) + 0x00; header = version, flags, type,
# seq (u16 LE). Bytes past the end of a short payload read as zero; a longer payload's
# tail is ignored; an unknown type decodes as 'unknown'.
import struct
from binascii import crc32, hexlify, unhexlify

from micropython import const

PROTOCOL_VERSION = const(1)
SCHEMA_FINGERPRINT = 0xE7202DBD
MAX_FRAME = const(300)
HEADER_SIZE = const(5)

# message type ids
T_HELLO = const(0x01)
T_RATING = const(0x02)
T_KEY_EVENT = const(0x03)
T_STATUS = const(0x04)
T_RESULT = const(0x05)
T_CONFIG_VALUE = const(0x06)
T_LOG = const(0x07)
T_HOST_HELLO = const(0x40)
T_ACK = const(0x41)
T_TIME_SYNC = const(0x42)
T_PROMPT = const(0x43)
T_CANCEL_PROMPT = const(0x44)
T_LOGIN = const(0x45)
T_LOGOUT = const(0x46)
T_GET_CONFIG = const(0x47)
T_SET_CONFIG = const(0x48)
T_SELF_TEST = const(0x49)
T_REBOOT = const(0x4A)
T_KEY_EVENTS = const(0x4B)

# header flags
HF_RETRANSMIT = const(0x1)
HF_RESPONSE = const(0x2)

# Capabilities
CAPABILITIES_STATUS_LED = const(0x1)
CAPABILITIES_BUZZER = const(0x2)
CAPABILITIES_KEY_EVENTS = const(0x4)
CAPABILITIES_SELF_TEST = const(0x8)
CAPABILITIES_MAINTENANCE = const(0x10)
CAPABILITIES_TIME_SYNC = const(0x20)

# RatingFlags
RATING_FLAGS_UNPROMPTED = const(0x1)
RATING_FLAGS_REPEAT = const(0x2)
RATING_FLAGS_MULTI_KEY = const(0x4)
RATING_FLAGS_STUCK_KEY = const(0x8)
RATING_FLAGS_NO_STAFF = const(0x10)
RATING_FLAGS_LATE = const(0x20)
RATING_FLAGS_DAMAGED = const(0x40)

# DeviceState
DEVICE_STATE_BOOTING = const(0x0)
DEVICE_STATE_IDLE = const(0x1)
DEVICE_STATE_PROMPTED = const(0x2)
DEVICE_STATE_THANKS = const(0x3)
DEVICE_STATE_MAINTENANCE = const(0x4)
DEVICE_STATE_FAULT = const(0x5)
DEVICE_STATE_SELF_TEST = const(0x6)

# Faults
FAULTS_STUCK_KEY = const(0x1)
FAULTS_JOURNAL_FULL = const(0x2)
FAULTS_JOURNAL_ERROR = const(0x4)
FAULTS_TIME_UNSYNCED = const(0x8)
FAULTS_CONFIG_ERROR = const(0x10)
FAULTS_WATCHDOG_RESET = const(0x20)
FAULTS_LOW_MEMORY = const(0x40)

# ResultCode
RESULT_CODE_OK = const(0x0)
RESULT_CODE_BAD_REQUEST = const(0x1)
RESULT_CODE_UNSUPPORTED = const(0x2)
RESULT_CODE_BUSY = const(0x3)
RESULT_CODE_DENIED = const(0x4)
RESULT_CODE_FAILED = const(0x5)
RESULT_CODE_BAD_VALUE = const(0x6)
RESULT_CODE_NOT_FOUND = const(0x7)

# LogLevel
LOG_LEVEL_DEBUG = const(0x0)
LOG_LEVEL_INFO = const(0x1)
LOG_LEVEL_WARNING = const(0x2)
LOG_LEVEL_ERROR = const(0x3)

# RebootMode
REBOOT_MODE_NORMAL = const(0x0)
REBOOT_MODE_MAINTENANCE = const(0x1)
REBOOT_MODE_BOOTLOADER = const(0x2)


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


def hello_into(
    out,
    seq,
    hflags,
    protocol_version,
    schema_fingerprint,
    key_count,
    capabilities,
    journal_capacity,
    journal_used,
    boot_count,
    uptime_ms,
    serial,
    firmware_version,
    board,
    acked_seq,
):
    struct.pack_into(
        "<BIBHIIII",
        _BODY,
        5,
        protocol_version,
        schema_fingerprint,
        key_count,
        capabilities,
        journal_capacity,
        journal_used,
        boot_count,
        uptime_ms,
    )
    o = _put_text(_BODY, 29, serial, 16)
    o = _put_text(_BODY, o, firmware_version, 16)
    o = _put_text(_BODY, o, board, 16)
    struct.pack_into("<I", _BODY, o, acked_seq)
    return _frame(out, T_HELLO, seq, hflags, o + 4)


def rating_into(
    out,
    seq,
    hflags,
    journal_seq,
    boot_id,
    uptime_ms,
    epoch_ms,
    score,
    key_count,
    prompt_id,
    flags,
    staff_id,
):
    struct.pack_into(
        "<IIIQBBIH",
        _BODY,
        5,
        journal_seq,
        boot_id,
        uptime_ms,
        0xFFFFFFFFFFFFFFFF if epoch_ms is None else epoch_ms,
        score,
        key_count,
        prompt_id,
        flags,
    )
    o = _put_text(_BODY, 33, staff_id, 16)
    return _frame(out, T_RATING, seq, hflags, o)


def key_event_into(out, seq, hflags, key, down, uptime_ms, bounces):
    struct.pack_into("<BBIB", _BODY, 5, key, down, uptime_ms, bounces)
    return _frame(out, T_KEY_EVENT, seq, hflags, 12)


def status_into(
    out,
    seq,
    hflags,
    state,
    faults,
    uptime_ms,
    journal_used,
    unacked,
    presses,
    unprompted,
    repeats,
    multi_key,
    stuck_keys,
    prompt_id,
    staff_id,
    acked_seq,
):
    struct.pack_into(
        "<BHIIIIIIIBI",
        _BODY,
        5,
        state,
        faults,
        uptime_ms,
        journal_used,
        unacked,
        presses,
        unprompted,
        repeats,
        multi_key,
        stuck_keys,
        prompt_id,
    )
    o = _put_text(_BODY, 41, staff_id, 16)
    struct.pack_into("<I", _BODY, o, acked_seq)
    return _frame(out, T_STATUS, seq, hflags, o + 4)


def result_into(out, seq, hflags, request_seq, code, detail):
    struct.pack_into("<HB", _BODY, 5, request_seq, code)
    o = _put_text(_BODY, 8, detail, 48)
    return _frame(out, T_RESULT, seq, hflags, o)


def config_value_into(out, seq, hflags, request_seq, key, value):
    struct.pack_into("<H", _BODY, 5, request_seq)
    o = _put_text(_BODY, 7, key, 16)
    o = _put_text(_BODY, o, value, 32)
    return _frame(out, T_CONFIG_VALUE, seq, hflags, o)


def log_into(out, seq, hflags, level, uptime_ms, text):
    struct.pack_into("<BI", _BODY, 5, level, uptime_ms)
    o = _put_text(_BODY, 10, text, 160)
    return _frame(out, T_LOG, seq, hflags, o)


# enum / flags member tables: ((name, value), ...)
_M_CAPABILITIES = (
    ("status_led", 0x1),
    ("buzzer", 0x2),
    ("key_events", 0x4),
    ("self_test", 0x8),
    ("maintenance", 0x10),
    ("time_sync", 0x20),
)
_M_RATING_FLAGS = (
    ("unprompted", 0x1),
    ("repeat", 0x2),
    ("multi_key", 0x4),
    ("stuck_key", 0x8),
    ("no_staff", 0x10),
    ("late", 0x20),
    ("damaged", 0x40),
)
_M_DEVICE_STATE = (
    ("booting", 0x0),
    ("idle", 0x1),
    ("prompted", 0x2),
    ("thanks", 0x3),
    ("maintenance", 0x4),
    ("fault", 0x5),
    ("self_test", 0x6),
)
_M_FAULTS = (
    ("stuck_key", 0x1),
    ("journal_full", 0x2),
    ("journal_error", 0x4),
    ("time_unsynced", 0x8),
    ("config_error", 0x10),
    ("watchdog_reset", 0x20),
    ("low_memory", 0x40),
)
_M_RESULT_CODE = (
    ("ok", 0x0),
    ("bad_request", 0x1),
    ("unsupported", 0x2),
    ("busy", 0x3),
    ("denied", 0x4),
    ("failed", 0x5),
    ("bad_value", 0x6),
    ("not_found", 0x7),
)
_M_LOG_LEVEL = (
    ("debug", 0x0),
    ("info", 0x1),
    ("warning", 0x2),
    ("error", 0x3),
)
_M_REBOOT_MODE = (
    ("normal", 0x0),
    ("maintenance", 0x1),
    ("bootloader", 0x2),
)
_M_HEADER_FLAGS = (
    ("retransmit", 0x1),
    ("response", 0x2),
)

# type id -> (name, max payload, fields); field = (name, kind, fmt, size, members)
_MESSAGES = {
    T_HELLO: (
        "hello",
        79,
        (
            ("protocol_version", 0, "<B", 1, None),
            ("schema_fingerprint", 0, "<I", 4, None),
            ("key_count", 0, "<B", 1, None),
            ("capabilities", 3, "<H", 2, _M_CAPABILITIES),
            ("journal_capacity", 0, "<I", 4, None),
            ("journal_used", 0, "<I", 4, None),
            ("boot_count", 0, "<I", 4, None),
            ("uptime_ms", 0, "<I", 4, None),
            ("serial", 5, "<", 16, None),
            ("firmware_version", 5, "<", 16, None),
            ("board", 5, "<", 16, None),
            ("acked_seq", 0, "<I", 4, None),
        ),
    ),
    T_RATING: (
        "rating",
        45,
        (
            ("journal_seq", 0, "<I", 4, None),
            ("boot_id", 0, "<I", 4, None),
            ("uptime_ms", 0, "<I", 4, None),
            ("epoch_ms", 4, "<Q", 8, None),
            ("score", 0, "<B", 1, None),
            ("key_count", 0, "<B", 1, None),
            ("prompt_id", 0, "<I", 4, None),
            ("flags", 3, "<H", 2, _M_RATING_FLAGS),
            ("staff_id", 5, "<", 16, None),
        ),
    ),
    T_KEY_EVENT: (
        "key_event",
        7,
        (
            ("key", 0, "<B", 1, None),
            ("down", 1, "<B", 1, None),
            ("uptime_ms", 0, "<I", 4, None),
            ("bounces", 0, "<B", 1, None),
        ),
    ),
    T_STATUS: (
        "status",
        57,
        (
            ("state", 2, "<B", 1, _M_DEVICE_STATE),
            ("faults", 3, "<H", 2, _M_FAULTS),
            ("uptime_ms", 0, "<I", 4, None),
            ("journal_used", 0, "<I", 4, None),
            ("unacked", 0, "<I", 4, None),
            ("presses", 0, "<I", 4, None),
            ("unprompted", 0, "<I", 4, None),
            ("repeats", 0, "<I", 4, None),
            ("multi_key", 0, "<I", 4, None),
            ("stuck_keys", 0, "<B", 1, None),
            ("prompt_id", 0, "<I", 4, None),
            ("staff_id", 5, "<", 16, None),
            ("acked_seq", 0, "<I", 4, None),
        ),
    ),
    T_RESULT: (
        "result",
        52,
        (
            ("request_seq", 0, "<H", 2, None),
            ("code", 2, "<B", 1, _M_RESULT_CODE),
            ("detail", 5, "<", 48, None),
        ),
    ),
    T_CONFIG_VALUE: (
        "config_value",
        52,
        (
            ("request_seq", 0, "<H", 2, None),
            ("key", 5, "<", 16, None),
            ("value", 5, "<", 32, None),
        ),
    ),
    T_LOG: (
        "log",
        166,
        (
            ("level", 2, "<B", 1, _M_LOG_LEVEL),
            ("uptime_ms", 0, "<I", 4, None),
            ("text", 5, "<", 160, None),
        ),
    ),
    T_HOST_HELLO: (
        "host_hello",
        38,
        (
            ("protocol_version", 0, "<B", 1, None),
            ("schema_fingerprint", 0, "<I", 4, None),
            ("software", 5, "<", 32, None),
        ),
    ),
    T_ACK: ("ack", 4, (("journal_seq", 0, "<I", 4, None),)),
    T_TIME_SYNC: ("time_sync", 8, (("epoch_ms", 0, "<Q", 8, None),)),
    T_PROMPT: (
        "prompt",
        25,
        (
            ("prompt_id", 0, "<I", 4, None),
            ("timeout_ms", 0, "<I", 4, None),
            ("staff_id", 5, "<", 16, None),
        ),
    ),
    T_CANCEL_PROMPT: ("cancel_prompt", 4, (("prompt_id", 0, "<I", 4, None),)),
    T_LOGIN: (
        "login",
        50,
        (
            ("staff_id", 5, "<", 16, None),
            ("display_name", 5, "<", 32, None),
        ),
    ),
    T_LOGOUT: ("logout", 17, (("staff_id", 5, "<", 16, None),)),
    T_GET_CONFIG: ("get_config", 17, (("key", 5, "<", 16, None),)),
    T_SET_CONFIG: (
        "set_config",
        50,
        (
            ("key", 5, "<", 16, None),
            ("value", 5, "<", 32, None),
        ),
    ),
    T_SELF_TEST: ("self_test", 0, ()),
    T_REBOOT: ("reboot", 1, (("mode", 2, "<B", 1, _M_REBOOT_MODE),)),
    T_KEY_EVENTS: ("key_events", 1, (("enabled", 1, "<B", 1, None),)),
}
_BY_NAME = {}
for _t, _m in _MESSAGES.items():
    _BY_NAME[_m[0]] = _t


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
