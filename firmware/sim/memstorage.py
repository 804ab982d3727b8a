# In-memory flash for tests and the simulator, with power cuts at a chosen moment.
# Model: a write persists a prefix of its bytes; rename and remove are atomic (as on littlefs).
# Every byte written and every rename/remove is one step; with `budget` steps left the power
# fails at that step: a write persists only the bytes before it, and PowerCut is raised. Cutting
# at every step from 0 to `steps` covers every byte of every write and every moment between them.


class PowerCut(Exception):
    pass


class MemStorage:
    def __init__(self):
        self.files = {}
        self.budget = -1  # steps before the power fails; -1 = no power cut planned
        self.steps = 0  # steps taken so far
        self.cut_suffix = None  # cut the power in the next write to a file whose name has this

    def copy(self):
        other = MemStorage()
        for name in self.files:
            other.files[name] = bytearray(self.files[name])
        return other

    def _step(self, n):
        # Take n steps; returns how many were taken before the power failed (n if none).
        if self.budget < 0:
            self.steps += n
            return n
        k = n if n < self.budget else self.budget
        self.budget -= k
        self.steps += k
        return k

    def _write(self, target, data):
        n = len(data)
        k = self._step(n)
        target.extend(data[:k])
        if k < n or (n == 0 and self.budget == 0):
            raise PowerCut()

    def _atomic(self):
        if self._step(1) < 1:
            raise PowerCut()

    def listdir(self):
        return [n for n in self.files if "/" not in n]

    def mkdir(self, name):
        pass

    def free_blocks(self):
        return None  # no limit but the journal's capacity

    def size(self, name):
        f = self.files.get(name)
        return -1 if f is None else len(f)

    def read(self, name):
        f = self.files.get(name)
        return None if f is None else bytes(f)

    def read_into(self, name, offset, buf):
        f = self.files.get(name)
        if f is None:
            raise OSError(2)
        n = min(len(buf), max(0, len(f) - offset))
        buf[:n] = f[offset : offset + n]
        return n

    def cut_in_next_append(self, part):
        # Plan a power cut in the middle of the next write to a file whose name holds `part`
        # (an append persists half its bytes; an atomic write() nothing).
        self.cut_suffix = part

    def append(self, name, data, more=None):
        f = self.files.get(name)
        if f is None:
            f = self.files[name] = bytearray()
        if more is not None:
            data = bytes(data) + bytes(more)
        if self.cut_suffix is not None and self.cut_suffix in name:
            self.cut_suffix = None
            self.budget = len(data) // 2
        self._write(f, data)

    def write(self, name, data):
        # Atomic, as littlefs commits a file at close: old content or new, never a mix.
        if self.cut_suffix is not None and self.cut_suffix in name:
            self.cut_suffix = None
            self.budget = len(data) // 2
        n = len(data)  # one step per byte, as for the other writes, but all or nothing
        if self._step(n) < n or (n == 0 and self.budget == 0):
            raise PowerCut()
        self.files[name] = bytearray(data)

    def replace(self, name, data):
        tmp = bytearray()
        self.files[name + ".tmp"] = tmp
        self._write(tmp, data)
        self._atomic()
        self.files[name] = self.files.pop(name + ".tmp")

    def remove(self, name):
        if name in self.files:
            self._atomic()
            self.files.pop(name)
