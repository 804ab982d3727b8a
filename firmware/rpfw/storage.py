# Flash storage seen by the journal and the settings: a directory of small files (names may
# hold one "/" for a subdirectory made with mkdir()). On the keypad it is littlefs: a file's
# new content is committed atomically when it is closed (littlefs's copy-on-write files), rename
# is atomic, a flushed append is durable. Tests and the simulator inject another object with the
# same methods.
import os
import sys

# littlefs commits a file atomically at close; a host filesystem (the simulator's folder) needs
# a temporary file and a rename for that
_ATOMIC_CLOSE = sys.implementation.name == "micropython"


class FileStorage:
    def __init__(self, root):
        self.root = root
        self.mkdir("")

    def _path(self, name):
        return self.root + "/" + name

    def mkdir(self, name):
        try:
            os.mkdir(self._path(name) if name else self.root)
        except OSError:
            pass  # already there

    def listdir(self):
        return os.listdir(self.root)

    def free_blocks(self):
        # (block size, free blocks) of the filesystem, or None if unknown.
        try:
            st = os.statvfs(self.root)
        except (AttributeError, OSError):
            return None
        return st[0], st[3]

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

    def append(self, name, data, more=None):
        # data (then more) at the end of the file, in one commit: durable once this returns, and
        # on littlefs all of it or none of it after a power cut.
        with open(self._path(name), "ab") as f:
            f.write(data)
            if more is not None:
                f.write(more)
            f.flush()

    def write(self, name, data):
        # The whole file, atomically: on littlefs one commit at close (no rename needed).
        if not _ATOMIC_CLOSE:
            self.replace(name, data)
            return
        with open(self._path(name), "wb") as f:
            f.write(data)

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
