# Keypad settings: defaults, validation, and persistence in flash ("settings" file, one
# "key=value" line each, replaced atomically). Unknown keys and bad values are refused with a
# reason; a damaged settings file falls back to defaults (and is reported as config_error).

# name -> (default, kind, low, high); kind: "int", "bool", "choice" (low = the choices), "text"
SPEC = {
    "keys": (5, "int", 3, 5),  # keys fitted (3-, 4- and 5-key keypads)
    "key_order": ("12345", "text", 0, 5),  # score of key i is int(key_order[i])
    "debounce": ("defer", "choice", ("defer", "eager", "asym"), 0),
    "debounce_ms": (20, "int", 1, 100),
    "chord_ms": (60, "int", 0, 500),  # a second key down within this window = several keys
    "repeat_guard_ms": (3000, "int", 0, 60000),
    "stuck_ms": (8000, "int", 1000, 600000),
    "unprompted": ("record", "choice", ("record", "ignore"), 0),
    "thanks_ms": (2000, "int", 200, 30000),
    "status_ms": (10000, "int", 1000, 600000),
    "ack_timeout_ms": (3000, "int", 200, 600000),
    "capacity": (20000, "int", 1, 20000),
    "buzzer": (0, "bool", 0, 1),
    "serial": ("", "text", 0, 16),
}
NAMES = sorted(SPEC)
_AT_BOOT = ("keys",)  # settings that take effect at the next boot


def _parse(name, text):
    # The value of `name` from its text form; raises ValueError with a reason.
    spec = SPEC.get(name)
    if spec is None:
        raise ValueError("unknown setting")
    default, kind, low, high = spec
    if kind == "int":
        try:
            v = int(text)
        except ValueError:
            raise ValueError("not an integer")
        if v < low or v > high:
            raise ValueError("out of range %d..%d" % (low, high))
        return v
    if kind == "bool":
        if text in ("1", "true", "on"):
            return 1
        if text in ("0", "false", "off"):
            return 0
        raise ValueError("not 0 or 1")
    if kind == "choice":
        if text not in low:
            raise ValueError("one of " + "/".join(low))
        return text
    if len(text.encode()) > high or len(text.encode()) < low:
        raise ValueError("length out of range")
    if name == "serial":
        # it becomes the USB serial string descriptor (UTF-16 of each byte on MicroPython:
        # anything beyond ASCII is garbled there) and hosts file ratings under it
        for c in text:
            if not " " <= c <= "~":
                raise ValueError("printable ASCII only")
    return text


def _text(value):
    return str(value)


class Settings:
    def __init__(self, storage=None):
        self.storage = storage
        self.values = {}
        self.damaged = False
        self._pending = {}  # saved, in effect after the next boot
        for name in NAMES:
            self.values[name] = SPEC[name][0]

    def load(self):
        raw = None if self.storage is None else self.storage.read("settings")
        if raw is None:
            return
        try:
            lines = str(raw, "utf-8").split("\n")
        except UnicodeError:
            self.damaged = True
            return
        found = {}
        for line in lines:
            if line:
                name, sep, text = line.partition("=")
                found[name] = text
        # "keys" first: key_order is checked against it
        for name in sorted(found, key=lambda n: n != "keys"):
            try:
                self._apply(name, found[name])
            except ValueError:
                self.damaged = True

    def _apply(self, name, text):
        v = _parse(name, text)
        if name == "key_order":
            _check_order(v, self.values["keys"])
        self.values[name] = v
        if name == "keys":
            try:
                _check_order(self.values["key_order"], v)
            except ValueError:
                self.values["key_order"] = _default_order(v)

    def get(self, name):
        return self.values[name]

    def text(self, name):
        if name not in SPEC:
            raise ValueError("unknown setting")
        return _text(self.values[name])

    def set(self, name, text):
        # Validate and persist one setting, then use it. Returns True if it only takes effect
        # after a reboot (the number of keys: pins, debouncer and LEDs are set up at boot).
        # Raises ValueError with a reason; OSError if flash fails (then nothing changed).
        v = _parse(name, text)
        if name == "key_order":
            _check_order(v, self.values["keys"])
        reboot = name in _AT_BOOT
        if reboot:
            default = _default_order(self.values["keys"])
            if self.values["key_order"] != default:
                raise ValueError("set key_order=" + default + " first")
        new = dict(self.values)
        for k in self._pending:
            new[k] = self._pending[k]
        new[name] = v
        self._write(new)
        if reboot:
            self._pending[name] = v
        else:
            self.values[name] = v
        return reboot

    def save(self):
        self._write(self.values)

    def _write(self, values):
        if self.storage is None:
            return
        out = []
        for name in NAMES:
            if values[name] != SPEC[name][0]:
                out.append(name + "=" + _text(values[name]))
        self.storage.replace("settings", ("\n".join(out) + "\n").encode())

    def score_of(self, key):
        # Score (1..keys) of key index `key`, from key_order.
        return ord(self.values["key_order"][key]) - 48


def _default_order(n):
    return "12345"[:n]


def _check_order(order, keys):
    # key_order must be a permutation of 1..keys
    if len(order) != keys:
        raise ValueError("key_order needs %d digits" % keys)
    for d in range(1, keys + 1):
        if str(d) not in order:
            raise ValueError("key_order must use each of 1..%d once" % keys)
