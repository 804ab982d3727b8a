-- DO NOT EDIT: generated from protocol/ratepad_protocol/schema.py by `make generate`.
-- Protocol version 1, schema fingerprint 0xe7202dbd.
-- Wireshark dissector for ratepad captures (pcapng, LINKTYPE_USER0 = 147) and for the
-- keypad's HID reports in USB captures (Linux usbmon, Windows USBPcap).
--   tshark -X lua_script:wireshark/ratepad.lua -r capture.pcapng
-- or copy this file into Wireshark's personal Lua plugins folder.

local PROTOCOL_VERSION = 1
local SCHEMA_FINGERPRINT = 0xe7202dbd
local MAX_FRAME_BYTES = 300
local HEADER_SIZE = 5
local PAD = string.rep("\0", 166)  -- zero-fill of shorter (older) payloads

-- message type id -> name
local TYPE_NAMES = {
  [0x01] = "hello",
  [0x02] = "rating",
  [0x03] = "key_event",
  [0x04] = "status",
  [0x05] = "result",
  [0x06] = "config_value",
  [0x07] = "log",
  [0x40] = "host_hello",
  [0x41] = "ack",
  [0x42] = "time_sync",
  [0x43] = "prompt",
  [0x44] = "cancel_prompt",
  [0x45] = "login",
  [0x46] = "logout",
  [0x47] = "get_config",
  [0x48] = "set_config",
  [0x49] = "self_test",
  [0x4a] = "reboot",
  [0x4b] = "key_events",
}

-- enum value strings
local VS = {
  DeviceState = { [0] = "booting", [1] = "idle", [2] = "prompted", [3] = "thanks", [4] = "maintenance", [5] = "fault", [6] = "self_test" },
  ResultCode = { [0] = "ok", [1] = "bad_request", [2] = "unsupported", [3] = "busy", [4] = "denied", [5] = "failed", [6] = "bad_value", [7] = "not_found" },
  LogLevel = { [0] = "debug", [1] = "info", [2] = "warning", [3] = "error" },
  RebootMode = { [0] = "normal", [1] = "maintenance", [2] = "bootloader" },
}

-- flags: { name, bit } by bit
local FLAGS = {
  HeaderFlags = { { "retransmit", 0x1 }, { "response", 0x2 } },
  Capabilities = { { "status_led", 0x1 }, { "buzzer", 0x2 }, { "key_events", 0x4 }, { "self_test", 0x8 }, { "maintenance", 0x10 }, { "time_sync", 0x20 } },
  RatingFlags = { { "unprompted", 0x1 }, { "repeat", 0x2 }, { "multi_key", 0x4 }, { "stuck_key", 0x8 }, { "no_staff", 0x10 }, { "late", 0x20 }, { "damaged", 0x40 } },
  Faults = { { "stuck_key", 0x1 }, { "journal_full", 0x2 }, { "journal_error", 0x4 }, { "time_unsynced", 0x8 }, { "config_error", 0x10 }, { "watchdog_reset", 0x20 }, { "low_memory", 0x40 } },
}

-- header, frame and bad-span fields
local PF = {
  device = ProtoField.string("ratepad.device", "device", base.UNICODE,
    "keypad (interface name)"),
  direction = ProtoField.string("ratepad.direction", "direction", base.ASCII,
    "in = keypad to host, out = host to keypad"),
  offset = ProtoField.uint64("ratepad.offset", "offset", base.DEC, nil, nil,
    "offset of the first byte in this direction's byte stream"),
  length = ProtoField.uint32("ratepad.length", "length", base.DEC, nil, nil,
    "bytes in the stream, delimiter included"),
  pending = ProtoField.uint32("ratepad.pending", "pending", base.DEC, nil, nil,
    "stream bytes waiting for a delimiter after this packet"),
  version = ProtoField.uint8("ratepad.version", "version", base.DEC),
  flags = ProtoField.uint8("ratepad.flags", "flags", base.HEX, nil, nil, "header flags"),
  type = ProtoField.uint8("ratepad.type", "type", base.HEX, TYPE_NAMES, nil, "message type"),
  seq = ProtoField.uint16("ratepad.seq", "seq", base.DEC, nil, nil, "sequence number"),
  crc = ProtoField.uint32("ratepad.crc", "crc", base.HEX, nil, nil,
    "CRC-32 (zlib) over header and payload"),
  crc_ok = ProtoField.bool("ratepad.crc_ok", "crc_ok", base.NONE, nil, nil, "CRC-32 matches"),
  error = ProtoField.string("ratepad.error", "error", base.ASCII, "kind of a bad span"),
  detail = ProtoField.string("ratepad.detail", "detail", base.UNICODE,
    "what is wrong with a bad span"),
  unknown_payload = ProtoField.bytes("ratepad.unknown.payload", "payload", base.NONE,
    "payload of a message type this schema does not know"),
}
local HEADER_FLAG_BITS = {
  ProtoField.bool("ratepad.flags.retransmit", "retransmit", 8, nil, 0x1),
  ProtoField.bool("ratepad.flags.response", "response", 8, nil, 0x2),
}

-- message type id -> name and fields in wire order
local MESSAGES = {
  [0x01] = { name = "hello", fields = {
    { name = "protocol_version", kind = "uint", size = 1,
      pf = ProtoField.uint8("ratepad.hello.protocol_version", "protocol_version", base.DEC, nil, nil, "u8") },
    { name = "schema_fingerprint", kind = "uint", size = 4,
      pf = ProtoField.uint32("ratepad.hello.schema_fingerprint", "schema_fingerprint", base.DEC, nil, nil, "u32") },
    { name = "key_count", kind = "uint", size = 1,
      pf = ProtoField.uint8("ratepad.hello.key_count", "key_count", base.DEC, nil, nil, "u8") },
    { name = "capabilities", kind = "flags", size = 2,
      pf = ProtoField.uint16("ratepad.hello.capabilities", "capabilities", base.HEX, nil, nil, "Capabilities (u16)"),
      members = FLAGS.Capabilities, bits = {
        ProtoField.bool("ratepad.hello.capabilities.status_led", "status_led", 16, nil, 0x1),
        ProtoField.bool("ratepad.hello.capabilities.buzzer", "buzzer", 16, nil, 0x2),
        ProtoField.bool("ratepad.hello.capabilities.key_events", "key_events", 16, nil, 0x4),
        ProtoField.bool("ratepad.hello.capabilities.self_test", "self_test", 16, nil, 0x8),
        ProtoField.bool("ratepad.hello.capabilities.maintenance", "maintenance", 16, nil, 0x10),
        ProtoField.bool("ratepad.hello.capabilities.time_sync", "time_sync", 16, nil, 0x20),
      } },
    { name = "journal_capacity", kind = "uint", size = 4,
      pf = ProtoField.uint32("ratepad.hello.journal_capacity", "journal_capacity", base.DEC, nil, nil, "u32") },
    { name = "journal_used", kind = "uint", size = 4,
      pf = ProtoField.uint32("ratepad.hello.journal_used", "journal_used", base.DEC, nil, nil, "u32") },
    { name = "boot_count", kind = "uint", size = 4,
      pf = ProtoField.uint32("ratepad.hello.boot_count", "boot_count", base.DEC, nil, nil, "u32") },
    { name = "uptime_ms", kind = "uint", size = 4,
      pf = ProtoField.uint32("ratepad.hello.uptime_ms", "uptime_ms", base.DEC, nil, nil, "u32") },
    { name = "serial", kind = "text", size = 16,
      pf = ProtoField.string("ratepad.hello.serial", "serial", base.UNICODE, "text, at most 16 UTF-8 bytes") },
    { name = "firmware_version", kind = "text", size = 16,
      pf = ProtoField.string("ratepad.hello.firmware_version", "firmware_version", base.UNICODE, "text, at most 16 UTF-8 bytes") },
    { name = "board", kind = "text", size = 16,
      pf = ProtoField.string("ratepad.hello.board", "board", base.UNICODE, "text, at most 16 UTF-8 bytes") },
    { name = "acked_seq", kind = "uint", size = 4,
      pf = ProtoField.uint32("ratepad.hello.acked_seq", "acked_seq", base.DEC, nil, nil, "u32") },
  } },
  [0x02] = { name = "rating", fields = {
    { name = "journal_seq", kind = "uint", size = 4,
      pf = ProtoField.uint32("ratepad.rating.journal_seq", "journal_seq", base.DEC, nil, nil, "u32") },
    { name = "boot_id", kind = "uint", size = 4,
      pf = ProtoField.uint32("ratepad.rating.boot_id", "boot_id", base.DEC, nil, nil, "u32") },
    { name = "uptime_ms", kind = "uint", size = 4,
      pf = ProtoField.uint32("ratepad.rating.uptime_ms", "uptime_ms", base.DEC, nil, nil, "u32") },
    { name = "epoch_ms", kind = "maybe", size = 8,
      pf = ProtoField.uint64("ratepad.rating.epoch_ms", "epoch_ms", base.DEC, nil, nil, "u64, all ones = none") },
    { name = "score", kind = "uint", size = 1,
      pf = ProtoField.uint8("ratepad.rating.score", "score", base.DEC, nil, nil, "u8") },
    { name = "key_count", kind = "uint", size = 1,
      pf = ProtoField.uint8("ratepad.rating.key_count", "key_count", base.DEC, nil, nil, "u8") },
    { name = "prompt_id", kind = "uint", size = 4,
      pf = ProtoField.uint32("ratepad.rating.prompt_id", "prompt_id", base.DEC, nil, nil, "u32") },
    { name = "flags", kind = "flags", size = 2,
      pf = ProtoField.uint16("ratepad.rating.flags", "flags", base.HEX, nil, nil, "RatingFlags (u16)"),
      members = FLAGS.RatingFlags, bits = {
        ProtoField.bool("ratepad.rating.flags.unprompted", "unprompted", 16, nil, 0x1),
        ProtoField.bool("ratepad.rating.flags.repeat", "repeat", 16, nil, 0x2),
        ProtoField.bool("ratepad.rating.flags.multi_key", "multi_key", 16, nil, 0x4),
        ProtoField.bool("ratepad.rating.flags.stuck_key", "stuck_key", 16, nil, 0x8),
        ProtoField.bool("ratepad.rating.flags.no_staff", "no_staff", 16, nil, 0x10),
        ProtoField.bool("ratepad.rating.flags.late", "late", 16, nil, 0x20),
        ProtoField.bool("ratepad.rating.flags.damaged", "damaged", 16, nil, 0x40),
      } },
    { name = "staff_id", kind = "text", size = 16,
      pf = ProtoField.string("ratepad.rating.staff_id", "staff_id", base.UNICODE, "text, at most 16 UTF-8 bytes") },
  } },
  [0x03] = { name = "key_event", fields = {
    { name = "key", kind = "uint", size = 1,
      pf = ProtoField.uint8("ratepad.key_event.key", "key", base.DEC, nil, nil, "u8") },
    { name = "down", kind = "bool", size = 1,
      pf = ProtoField.bool("ratepad.key_event.down", "down", base.NONE, nil, nil, "bool (u8)") },
    { name = "uptime_ms", kind = "uint", size = 4,
      pf = ProtoField.uint32("ratepad.key_event.uptime_ms", "uptime_ms", base.DEC, nil, nil, "u32") },
    { name = "bounces", kind = "uint", size = 1,
      pf = ProtoField.uint8("ratepad.key_event.bounces", "bounces", base.DEC, nil, nil, "u8") },
  } },
  [0x04] = { name = "status", fields = {
    { name = "state", kind = "enum", size = 1,
      pf = ProtoField.uint8("ratepad.status.state", "state", base.DEC, VS.DeviceState, nil, "DeviceState (u8)") },
    { name = "faults", kind = "flags", size = 2,
      pf = ProtoField.uint16("ratepad.status.faults", "faults", base.HEX, nil, nil, "Faults (u16)"),
      members = FLAGS.Faults, bits = {
        ProtoField.bool("ratepad.status.faults.stuck_key", "stuck_key", 16, nil, 0x1),
        ProtoField.bool("ratepad.status.faults.journal_full", "journal_full", 16, nil, 0x2),
        ProtoField.bool("ratepad.status.faults.journal_error", "journal_error", 16, nil, 0x4),
        ProtoField.bool("ratepad.status.faults.time_unsynced", "time_unsynced", 16, nil, 0x8),
        ProtoField.bool("ratepad.status.faults.config_error", "config_error", 16, nil, 0x10),
        ProtoField.bool("ratepad.status.faults.watchdog_reset", "watchdog_reset", 16, nil, 0x20),
        ProtoField.bool("ratepad.status.faults.low_memory", "low_memory", 16, nil, 0x40),
      } },
    { name = "uptime_ms", kind = "uint", size = 4,
      pf = ProtoField.uint32("ratepad.status.uptime_ms", "uptime_ms", base.DEC, nil, nil, "u32") },
    { name = "journal_used", kind = "uint", size = 4,
      pf = ProtoField.uint32("ratepad.status.journal_used", "journal_used", base.DEC, nil, nil, "u32") },
    { name = "unacked", kind = "uint", size = 4,
      pf = ProtoField.uint32("ratepad.status.unacked", "unacked", base.DEC, nil, nil, "u32") },
    { name = "presses", kind = "uint", size = 4,
      pf = ProtoField.uint32("ratepad.status.presses", "presses", base.DEC, nil, nil, "u32") },
    { name = "unprompted", kind = "uint", size = 4,
      pf = ProtoField.uint32("ratepad.status.unprompted", "unprompted", base.DEC, nil, nil, "u32") },
    { name = "repeats", kind = "uint", size = 4,
      pf = ProtoField.uint32("ratepad.status.repeats", "repeats", base.DEC, nil, nil, "u32") },
    { name = "multi_key", kind = "uint", size = 4,
      pf = ProtoField.uint32("ratepad.status.multi_key", "multi_key", base.DEC, nil, nil, "u32") },
    { name = "stuck_keys", kind = "uint", size = 1,
      pf = ProtoField.uint8("ratepad.status.stuck_keys", "stuck_keys", base.DEC, nil, nil, "u8") },
    { name = "prompt_id", kind = "uint", size = 4,
      pf = ProtoField.uint32("ratepad.status.prompt_id", "prompt_id", base.DEC, nil, nil, "u32") },
    { name = "staff_id", kind = "text", size = 16,
      pf = ProtoField.string("ratepad.status.staff_id", "staff_id", base.UNICODE, "text, at most 16 UTF-8 bytes") },
    { name = "acked_seq", kind = "uint", size = 4,
      pf = ProtoField.uint32("ratepad.status.acked_seq", "acked_seq", base.DEC, nil, nil, "u32") },
  } },
  [0x05] = { name = "result", fields = {
    { name = "request_seq", kind = "uint", size = 2,
      pf = ProtoField.uint16("ratepad.result.request_seq", "request_seq", base.DEC, nil, nil, "u16") },
    { name = "code", kind = "enum", size = 1,
      pf = ProtoField.uint8("ratepad.result.code", "code", base.DEC, VS.ResultCode, nil, "ResultCode (u8)") },
    { name = "detail", kind = "text", size = 48,
      pf = ProtoField.string("ratepad.result.detail", "detail", base.UNICODE, "text, at most 48 UTF-8 bytes") },
  } },
  [0x06] = { name = "config_value", fields = {
    { name = "request_seq", kind = "uint", size = 2,
      pf = ProtoField.uint16("ratepad.config_value.request_seq", "request_seq", base.DEC, nil, nil, "u16") },
    { name = "key", kind = "text", size = 16,
      pf = ProtoField.string("ratepad.config_value.key", "key", base.UNICODE, "text, at most 16 UTF-8 bytes") },
    { name = "value", kind = "text", size = 32,
      pf = ProtoField.string("ratepad.config_value.value", "value", base.UNICODE, "text, at most 32 UTF-8 bytes") },
  } },
  [0x07] = { name = "log", fields = {
    { name = "level", kind = "enum", size = 1,
      pf = ProtoField.uint8("ratepad.log.level", "level", base.DEC, VS.LogLevel, nil, "LogLevel (u8)") },
    { name = "uptime_ms", kind = "uint", size = 4,
      pf = ProtoField.uint32("ratepad.log.uptime_ms", "uptime_ms", base.DEC, nil, nil, "u32") },
    { name = "text", kind = "text", size = 160,
      pf = ProtoField.string("ratepad.log.text", "text", base.UNICODE, "text, at most 160 UTF-8 bytes") },
  } },
  [0x40] = { name = "host_hello", fields = {
    { name = "protocol_version", kind = "uint", size = 1,
      pf = ProtoField.uint8("ratepad.host_hello.protocol_version", "protocol_version", base.DEC, nil, nil, "u8") },
    { name = "schema_fingerprint", kind = "uint", size = 4,
      pf = ProtoField.uint32("ratepad.host_hello.schema_fingerprint", "schema_fingerprint", base.DEC, nil, nil, "u32") },
    { name = "software", kind = "text", size = 32,
      pf = ProtoField.string("ratepad.host_hello.software", "software", base.UNICODE, "text, at most 32 UTF-8 bytes") },
  } },
  [0x41] = { name = "ack", fields = {
    { name = "journal_seq", kind = "uint", size = 4,
      pf = ProtoField.uint32("ratepad.ack.journal_seq", "journal_seq", base.DEC, nil, nil, "u32") },
  } },
  [0x42] = { name = "time_sync", fields = {
    { name = "epoch_ms", kind = "uint", size = 8,
      pf = ProtoField.uint64("ratepad.time_sync.epoch_ms", "epoch_ms", base.DEC, nil, nil, "u64") },
  } },
  [0x43] = { name = "prompt", fields = {
    { name = "prompt_id", kind = "uint", size = 4,
      pf = ProtoField.uint32("ratepad.prompt.prompt_id", "prompt_id", base.DEC, nil, nil, "u32") },
    { name = "timeout_ms", kind = "uint", size = 4,
      pf = ProtoField.uint32("ratepad.prompt.timeout_ms", "timeout_ms", base.DEC, nil, nil, "u32") },
    { name = "staff_id", kind = "text", size = 16,
      pf = ProtoField.string("ratepad.prompt.staff_id", "staff_id", base.UNICODE, "text, at most 16 UTF-8 bytes") },
  } },
  [0x44] = { name = "cancel_prompt", fields = {
    { name = "prompt_id", kind = "uint", size = 4,
      pf = ProtoField.uint32("ratepad.cancel_prompt.prompt_id", "prompt_id", base.DEC, nil, nil, "u32") },
  } },
  [0x45] = { name = "login", fields = {
    { name = "staff_id", kind = "text", size = 16,
      pf = ProtoField.string("ratepad.login.staff_id", "staff_id", base.UNICODE, "text, at most 16 UTF-8 bytes") },
    { name = "display_name", kind = "text", size = 32,
      pf = ProtoField.string("ratepad.login.display_name", "display_name", base.UNICODE, "text, at most 32 UTF-8 bytes") },
  } },
  [0x46] = { name = "logout", fields = {
    { name = "staff_id", kind = "text", size = 16,
      pf = ProtoField.string("ratepad.logout.staff_id", "staff_id", base.UNICODE, "text, at most 16 UTF-8 bytes") },
  } },
  [0x47] = { name = "get_config", fields = {
    { name = "key", kind = "text", size = 16,
      pf = ProtoField.string("ratepad.get_config.key", "key", base.UNICODE, "text, at most 16 UTF-8 bytes") },
  } },
  [0x48] = { name = "set_config", fields = {
    { name = "key", kind = "text", size = 16,
      pf = ProtoField.string("ratepad.set_config.key", "key", base.UNICODE, "text, at most 16 UTF-8 bytes") },
    { name = "value", kind = "text", size = 32,
      pf = ProtoField.string("ratepad.set_config.value", "value", base.UNICODE, "text, at most 32 UTF-8 bytes") },
  } },
  [0x49] = { name = "self_test", fields = {
  } },
  [0x4a] = { name = "reboot", fields = {
    { name = "mode", kind = "enum", size = 1,
      pf = ProtoField.uint8("ratepad.reboot.mode", "mode", base.DEC, VS.RebootMode, nil, "RebootMode (u8)") },
  } },
  [0x4b] = { name = "key_events", fields = {
    { name = "enabled", kind = "bool", size = 1,
      pf = ProtoField.bool("ratepad.key_events.enabled", "enabled", base.NONE, nil, nil, "bool (u8)") },
  } },
}

-- expert infos (ratepad.expert.<kind>), one per kind of bad span
local EXPERT_KINDS = {
  cobs = "bad COBS byte stuffing",
  short = "frame shorter than header and CRC",
  crc = "CRC-32 mismatch",
  version = "unsupported protocol version",
  payload = "payload field cannot be decoded",
  too_long = "no delimiter within the maximum frame length",
  truncated = "capture ended inside a frame",
}

-- ---------------------------------------------------------------------------------------------
-- Runtime (fixed text of protocol/ratepad_protocol/runtime/dissector.lua)

local proto = Proto("ratepad", string.format("ratepad keypad protocol v%d (schema %08x)",
  PROTOCOL_VERSION, SCHEMA_FINGERPRINT))

local EXPERTS = {}
do
  local list = {}
  for kind, text in pairs(EXPERT_KINDS) do
    EXPERTS[kind] = ProtoExpert.new("ratepad.expert." .. kind, text, expert.group.MALFORMED,
      expert.severity.ERROR)
    list[#list + 1] = EXPERTS[kind]
  end
  proto.experts = list
end

do
  local fields = {}
  for _, pf in pairs(PF) do fields[#fields + 1] = pf end
  for _, pf in ipairs(HEADER_FLAG_BITS) do fields[#fields + 1] = pf end
  for _, m in pairs(MESSAGES) do
    for _, f in ipairs(m.fields) do
      fields[#fields + 1] = f.pf
      for _, b in ipairs(f.bits or {}) do fields[#fields + 1] = b end
    end
  end
  proto.fields = fields
end

-- Bit operations: bit32 (Lua 5.2), Wireshark's BitOp "bit", or Lua 5.3+ native operators.
local band, bxor, rshift
if bit32 then
  band, bxor, rshift = bit32.band, bit32.bxor, bit32.rshift
elseif bit then
  band, bxor, rshift = bit.band, bit.bxor, bit.rshift
else
  band = load("return function(a, b) return a & b end")()
  bxor = load("return function(a, b) return a ~ b end")()
  rshift = load("return function(a, b) return (a & 0xFFFFFFFF) >> b end")()
end

local function u32(x)
  if x < 0 then x = x + 4294967296 end  -- BitOp returns signed results
  return x
end

local CRC_TABLE = {}
for i = 0, 255 do
  local c = i
  for _ = 1, 8 do
    if band(c, 1) ~= 0 then c = bxor(0xEDB88320, rshift(c, 1)) else c = rshift(c, 1) end
  end
  CRC_TABLE[i] = c
end

-- CRC-32 (zlib) of s[i..j]
local function crc32(s, i, j)
  local c = 0xFFFFFFFF
  for k = i, j do
    c = bxor(CRC_TABLE[band(bxor(c, s:byte(k)), 0xFF)], rshift(c, 8))
  end
  return u32(bxor(c, 0xFFFFFFFF))
end

-- little-endian unsigned integer of size 1, 2 or 4 at s[i]
local function le(s, i, size)
  local v = 0
  for k = size - 1, 0, -1 do v = v * 256 + s:byte(i + k) end
  return v
end

-- strict UTF-8, as Python's bytes.decode() checks it
local function valid_utf8(s)
  local i, n = 1, #s
  while i <= n do
    local c = s:byte(i)
    if c < 0x80 then
      i = i + 1
    else
      local len, lo, hi
      if c >= 0xC2 and c <= 0xDF then len, lo, hi = 2, 0x80, 0xBF
      elseif c == 0xE0 then len, lo, hi = 3, 0xA0, 0xBF
      elseif c == 0xED then len, lo, hi = 3, 0x80, 0x9F
      elseif c >= 0xE1 and c <= 0xEF then len, lo, hi = 3, 0x80, 0xBF
      elseif c == 0xF0 then len, lo, hi = 4, 0x90, 0xBF
      elseif c == 0xF4 then len, lo, hi = 4, 0x80, 0x8F
      elseif c >= 0xF1 and c <= 0xF3 then len, lo, hi = 4, 0x80, 0xBF
      else return false end
      if i + len - 1 > n then return false end
      local c2 = s:byte(i + 1)
      if c2 < lo or c2 > hi then return false end
      for k = i + 2, i + len - 1 do
        local ck = s:byte(k)
        if ck < 0x80 or ck > 0xBF then return false end
      end
      i = i + len
    end
  end
  return true
end

-- COBS decode of a span without zero bytes; nil, reason on bad stuffing
local function cobs_decode(s)
  local out, n, i = {}, #s, 1
  while i <= n do
    local code = s:byte(i)
    local nxt = i + code
    if nxt > n + 1 then return nil, "not enough input bytes for length code" end
    out[#out + 1] = s:sub(i + 1, nxt - 1)
    i = nxt
    if i <= n and code < 0xFF then out[#out + 1] = "\0" end
  end
  return table.concat(out)
end

-- The fields of one payload (zero-filled past its end); nil, detail for a bad value.
local function decode_payload(msg, payload)
  local p = payload .. PAD
  local pos = 0
  local values = {}
  for _, f in ipairs(msg.fields) do
    local v = { f = f, pos = pos }
    if f.kind == "text" then
      local n = p:byte(pos + 1)
      if n > f.size then
        return nil, msg.name .. "." .. f.name .. ": longer than " .. f.size .. " bytes"
      end
      v.value = p:sub(pos + 2, pos + 1 + n)
      if not valid_utf8(v.value) then return nil, "text is not UTF-8" end
      v.len = 1 + n
    elseif f.size == 8 then
      v.lo, v.hi, v.len = le(p, pos + 1, 4), le(p, pos + 5, 4), 8
    else
      v.value, v.len = le(p, pos + 1, f.size), f.size
    end
    pos = pos + v.len
    values[#values + 1] = v
  end
  return values
end

-- One span between delimiters: a frame table, or nil, kind, detail.
local function decode_span(span)
  local body, why = cobs_decode(span)
  if not body then return nil, "cobs", why end
  local n = #body
  if n < HEADER_SIZE + 4 then
    return nil, "short", n .. " bytes is shorter than header and CRC"
  end
  local crc, stored = crc32(body, 1, n - 4), le(body, n - 3, 4)
  if crc ~= stored then
    return nil, "crc", string.format("CRC-32 mismatch (computed 0x%08x, frame has 0x%08x)",
      crc, stored)
  end
  local version = body:byte(1)
  if version ~= PROTOCOL_VERSION then
    return nil, "version", "protocol version " .. version .. " is not supported"
  end
  local frame = { body = body, flags = body:byte(2), type_id = body:byte(3),
                  seq = le(body, 4, 2), crc = stored }
  local msg = MESSAGES[frame.type_id]
  if msg then
    local values, detail = decode_payload(msg, body:sub(HEADER_SIZE + 1, n - 4))
    if not values then return nil, "payload", detail end
    frame.values = values
  end
  return frame
end

-- Starts >= first (0-based) whose COBS code chain ends exactly at the end of the span.
local function chain_starts(span, first)
  local n = #span
  local lands = { [n] = true }
  for i = n - 1, first, -1 do
    local nxt = i + span:byte(i + 1)
    lands[i] = nxt <= n and lands[nxt] == true
  end
  local starts = {}
  for i = first, n - 1 do
    if lands[i] then starts[#starts + 1] = i end
  end
  return starts
end

local function bad(offset, length, kind, detail)
  return { offset = offset, length = length, kind = kind, detail = detail }
end

-- A bad span may still end with an intact frame (garbage glued to its front).
local function resync(span, offset, first, kind, detail, out, dropped)
  for _, start in ipairs(chain_starts(span, first)) do
    local frame = decode_span(span:sub(start + 1))
    if frame then
      if dropped + start > 0 then
        out[#out + 1] = bad(offset - dropped, dropped + start, kind, detail)
      end
      frame.offset, frame.length = offset + start, #span - start + 1
      out[#out + 1] = frame
      return
    end
  end
  out[#out + 1] = bad(offset - dropped, dropped + #span + 1, kind, detail)
end

local WINDOW = MAX_FRAME_BYTES - 1  -- longest COBS span of a legal frame

-- Feed one chunk into a stream's state; appends the frames and bad spans it completes to out.
-- The same algorithm as ratepad.wire.stream.StreamDecoder.feed.
local function feed(st, data, out)
  local buf = st.pending .. data
  local offset = st.offset
  local pos = 1
  while true do
    local z = buf:find("\0", pos, true)
    if not z then break end
    local span = buf:sub(pos, z - 1)
    if st.dropped > 0 or #span > WINDOW then
      local first = math.max(st.dropped > 0 and 0 or 1, #span - WINDOW)
      resync(span, offset, first, "too_long", "no delimiter within " .. (WINDOW + 1) .. " bytes",
        out, st.dropped)
      st.dropped = 0
    elseif #span > 0 then
      local frame, kind, detail = decode_span(span)
      if frame then
        frame.offset, frame.length = offset, #span + 1
        out[#out + 1] = frame
      else
        resync(span, offset, 1, kind, detail, out, 0)
      end
    end
    offset = offset + #span + 1
    pos = z + 1
  end
  local tail = buf:sub(pos)
  if #tail > WINDOW then
    local cut = #tail - WINDOW
    st.dropped = st.dropped + cut
    offset = offset + cut
    tail = tail:sub(cut + 1)
  end
  st.pending, st.offset = tail, offset
end

-- First-pass state: stream per (interface, direction); results per packet number.
-- USB captures: devices found to be keypads (see heuristic below).
local streams, results, usb_keypads = {}, {}, {}

function proto.init()
  streams, results, usb_keypads = {}, {}, {}
end

local f_frame_number = Field.new("frame.number")
local f_iface_id = Field.new("frame.interface_id")
local f_iface_name = Field.new("frame.interface_name")

-- Field values (the interface id) exist only on passes that build a protocol tree. A filtering
-- tap makes Wireshark build one on its first pass too; tshark's first pass of -2 builds none, so
-- there the streams are fed on the second pass, which also goes through the packets in order.
Listener.new("frame", "ratepad")

local function flag_names(value, members)
  local names, known = {}, 0
  for _, m in ipairs(members) do
    known = known + m[2]
    if band(value, m[2]) ~= 0 then names[#names + 1] = m[1] end
  end
  local unknown, b = value - band(value, known), 0
  while unknown > 0 do
    if unknown % 2 == 1 then names[#names + 1] = "bit" .. b end
    unknown, b = math.floor(unknown / 2), b + 1
  end
  return names
end

local function add_value(tree, btvb, base, payload_len, v)
  local f = v.f
  local avail = math.max(0, math.min(v.len, payload_len - v.pos))
  local range = avail > 0 and btvb(base + v.pos, avail) or nil
  local item
  local value = v.value
  if f.size == 8 and f.kind ~= "text" then value = UInt64.new(v.lo, v.hi) end
  if f.kind == "bool" then value = v.value ~= 0 end
  if avail == v.len and f.kind ~= "text" then
    item = tree:add_le(f.pf, range)
  elseif range then
    item = tree:add(f.pf, range, value)
  else
    item = tree:add(f.pf, value)
  end
  if f.kind == "maybe" and v.lo == 0xFFFFFFFF and v.hi == 0xFFFFFFFF
    or f.kind == "maybe" and f.size < 8 and v.value == 2 ^ (8 * f.size) - 1 then
    item:set_text(f.name .. ": none")
  elseif f.kind == "flags" then
    if range and avail == v.len then
      for _, b in ipairs(f.bits) do item:add_le(b, range) end
    end
    item:append_text(" [" .. table.concat(flag_names(v.value, f.members), ", ") .. "]")
  end
  if avail < v.len then item:append_text(" (zero-filled: past the end of the payload)") end
end

local function show_frame(tree, ti, fr)
  local body = fr.body
  local btvb = ByteArray.new(body, true):tvb("ratepad frame @" .. fr.offset)
  local n = #body
  ti:add(PF.version, btvb(0, 1))
  local fl = ti:add(PF.flags, btvb(1, 1))
  for _, b in ipairs(HEADER_FLAG_BITS) do fl:add(b, btvb(1, 1)) end
  fl:append_text(" [" .. table.concat(flag_names(fr.flags, FLAGS.HeaderFlags), ", ") .. "]")
  ti:add(PF.type, btvb(2, 1))
  ti:add_le(PF.seq, btvb(3, 2))
  local msg = MESSAGES[fr.type_id]
  local payload_len = n - HEADER_SIZE - 4
  local prange = btvb(HEADER_SIZE, payload_len)
  if msg then
    local mt = ti:add(prange, msg.name)
    for _, v in ipairs(fr.values) do add_value(mt, btvb, HEADER_SIZE, payload_len, v) end
  else
    local item = ti:add(PF.unknown_payload, prange)
    if payload_len == 0 then item:set_text("payload: (empty)") end
  end
  ti:add_le(PF.crc, btvb(n - 4, 4))
  ti:add(PF.crc_ok, btvb(n - 4, 4), true)
  return msg and msg.name or string.format("unknown (0x%02x)", fr.type_id)
end

local f_usb_bus = Field.new("usb.bus_id")
local f_usb_address = Field.new("usb.device_address")
local f_usb_direction = Field.new("usb.endpoint_address.direction")

-- The link a packet belongs to: (stream key, device name, direction). In ratepad's own captures
-- an interface is a keypad and epb_flags gives the direction; in a USB capture (usbmon, USBPcap)
-- the packet is the data of one interrupt transfer of device BUS.ADDR, IN = keypad to host.
local function link_of(pinfo)
  local bus, address = f_usb_bus(), f_usb_address()
  if bus and address then
    local name = tostring(bus.value) .. "." .. tostring(address.value)
    local dir = f_usb_direction()
    return "usb " .. name, name, (dir and dir.value == 1) and "in" or "out"
  end
  local iface = f_iface_id()
  local name = f_iface_name()
  iface = iface and iface.value or 0  -- a pcap file has one interface and no interface id
  name = name and tostring(name.value) or tostring(iface)
  local direction = pinfo.p2p_dir == 0 and "out" or "in"  -- P2P_DIR_SENT = host to keypad
  return iface .. ":" .. direction, name, direction
end

-- This packet's reassembly result (fed on the first pass that builds a tree, then cached);
-- nil, reason when there is none to show.
local function reassemble(tvb, pinfo, key)
  local res = results[pinfo.number]
  if res then return res end
  if not f_frame_number() then return nil, "no tree" end  -- see Listener above
  local st = streams[key]
  if not st then
    st = { pending = "", offset = 0, dropped = 0, last = 0 }
    streams[key] = st
  end
  if pinfo.number <= st.last then return nil, "out of order" end
  st.last = pinfo.number
  res = { start = st.offset + #st.pending, items = {} }
  feed(st, tvb:raw(), res.items)
  res.pending = st.dropped + #st.pending
  results[pinfo.number] = res
  return res
end

local function show(tvb, pinfo, tree, res, name, direction)
  pinfo.cols.protocol = "RATEPAD"
  local plen = tvb:len()
  local info = {}
  for _, item in ipairs(res.items) do
    -- the part of the item that is in this packet (garbage before a recovered frame may be in
    -- earlier packets only)
    local first = math.max(item.offset - res.start, 0)
    local last = math.min(item.offset + item.length - res.start, plen)
    local ti = tree:add(proto, tvb(math.min(first, plen), math.max(last - first, 0)))
    ti:add(PF.device, name)
    ti:add(PF.direction, direction)
    ti:add(PF.offset, UInt64.new(item.offset % 4294967296, math.floor(item.offset / 4294967296)))
    ti:add(PF.length, item.length)
    if item.kind then
      ti:set_text(string.format("ratepad %s, error %s @%d (%d bytes): %s", direction, item.kind,
        item.offset, item.length, item.detail))
      ti:add(PF.error, item.kind)
      ti:add(PF.detail, item.detail)
      if item.kind == "crc" then ti:add(PF.crc_ok, false) end
      ti:add_proto_expert_info(EXPERTS[item.kind], item.kind .. ": " .. item.detail)
      info[#info + 1] = "[" .. item.kind .. " error]"
    else
      local label = show_frame(tree, ti, item)
      ti:set_text(string.format("ratepad %s, %s, seq %d", direction, label, item.seq))
      info[#info + 1] = label
    end
  end
  if res.pending > 0 or #res.items == 0 then
    -- no frame ends here, or one starts that ends in a later packet
    local ti = tree:add(proto, tvb())
    if res.pending > 0 then
      ti:set_text(string.format("ratepad %s, %d bytes waiting for a delimiter", direction,
        res.pending))
    else
      ti:set_text(string.format("ratepad %s, padding (0x00 bytes: empty frames)", direction))
    end
    ti:add(PF.device, name)
    ti:add(PF.direction, direction)
    ti:add(PF.pending, res.pending)
    if #res.items == 0 then
      info[#info + 1] = res.pending > 0 and "(part of a frame)" or "(padding)"
    end
  end
  pinfo.cols.info = direction .. " " .. table.concat(info, ", ")
  return plen
end

function proto.dissector(tvb, pinfo, tree)
  local key, name, direction = link_of(pinfo)
  local res, why = reassemble(tvb, pinfo, key)
  if not res then
    if why == "out of order" then
      -- reached out of order without a first pass in order: nothing sound to show
      pinfo.cols.protocol = "RATEPAD"
      local ti = tree:add(proto, tvb())
      ti:set_text("ratepad: not reassembled (this packet was not dissected in order)")
    end
    return tvb:len()
  end
  return show(tvb, pinfo, tree, res, name, direction)
end

-- USB captures. A keypad is found by its VID:PID (ratepad/transports/usbid.py) when the capture
-- holds its device descriptor, else by a heuristic on HID interrupt transfers: a device is the
-- keypad once one of its 64-byte reports completes a frame that passes the COBS and CRC-32
-- checks; from then on all its reports, both ways, are dissected.
local USB_VID, USB_PID, REPORT_SIZE = 0x1209, 0x0001, 64

local function heuristic(tvb, pinfo, tree)
  if tvb:len() ~= REPORT_SIZE then return false end
  local key, name, direction = link_of(pinfo)
  local res = reassemble(tvb, pinfo, key)
  if not res then return false end
  if not usb_keypads[name] then
    for _, item in ipairs(res.items) do
      if not item.kind then usb_keypads[name] = true end
    end
    if not usb_keypads[name] then return false end
  end
  show(tvb, pinfo, tree, res, name, direction)
  return true
end


DissectorTable.get("wtap_encap"):add(wtap_encaps and wtap_encaps.USER0 or wtap.USER0, proto)
DissectorTable.get("usb.product"):add(USB_VID * 65536 + USB_PID, proto)
proto:register_heuristic("usb.interrupt", heuristic)
