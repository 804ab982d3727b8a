# Flash storage seen by the journal and the settings: one flat directory of small files.
# On the keypad it is littlefs (power-loss resilient: rename is atomic, a flushed append is
# durable). Tests and the simulator inject another object with the same methods.
import os


class FileStorage:
    def __init__(self, root):
        self.root = root
        try:
            os.mkdir(root)
        except OSError:
            pass  # already there

    def _path(self, name):
        return self.root + "/" + name

    def listdir(self):
        return os.listdir(self.root)

    def size(self, name):
        try:
            return os.stat(self._path(name))[6]
        except OSError:
            return -1

    def read(self, name):
        try:
            with open(self._path(name), "rb") as f:
                return f.read()
        except OSError:
            return None

    def read_into(self, name, offset, buf):
        # Fill buf from offset; returns the number of bytes read.
        with open(self._path(name), "rb") as f:
            f.seek(offset)
            return f.readinto(buf)

    def append(self, name, data):
        # Durable once this returns (flush commits on littlefs).
        with open(self._path(name), "ab") as f:
            f.write(data)
            f.flush()

    def replace(self, name, data):
        # Atomic: the old content or the new one survives a power cut, never a mix.
        tmp = self._path(name + ".tmp")
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
        os.rename(tmp, self._path(name))

    def remove(self, name):
        try:
            os.remove(self._path(name))
        except OSError:
            pass
