# The keypad's flash on CPython: the real littlefs C library (the littlefs-python package) on a
# RAM block device with a board's geometry and MicroPython's littlefs configuration, behind the
# same methods as rpfw.storage.FileStorage. CPython only (tests, benches, the simulator).
#
# Geometry and configuration (MicroPython v1.24-v1.28):
#   Pico   1408 KB of filesystem = 352 blocks of 4 KB   ports/rp2/boards/RPI_PICO/mpconfigboard.h
#   Pico W  848 KB of filesystem = 212 blocks of 4 KB   ports/rp2/boards/RPI_PICO_W/mpconfigboard.h
#          (MICROPY_HW_FLASH_STORAGE_BYTES; the rp2 flash erases 4 KB sectors, programs 256 B)
#   prog_size 256 ........................ ports/rp2/modules/_boot.py VfsLfs2(bdev, progsize=256)
#   read_size 32, lookahead 32 ........... extmod/vfs_lfs.c defaults of VfsLfs2(readsize, lookahead)
#   cache_size 4 * max(read, prog), block_cycles 100 ...... extmod/vfs_lfsx.c init_config
#   (MicroPython also stores an mtime attribute with each file; not modelled here)
#   free blocks as os.statvfs counts them: extmod/vfs_lfsx.c statvfs gives block_count less the
#   blocks lfs2_fs_traverse visits, and that (lib/littlefs/lfs2.c lfs2_fs_traverse_ with
#   includeorphans) visits each directory's metadata pair twice, in the metadata list and from
#   its parent's entry; lfs_fs_size (littlefs-python's used_block_count) visits it once. So every
#   folder costs 4 blocks of statvfs free space, not 2 (measured on the real rp2 binary).
# File operations map as MicroPython's VfsLfs2 maps them: open "ab" = WRONLY|CREAT|APPEND,
# "wb" = WRONLY|CREAT|TRUNC, close = lfs_file_close (the commit); errors are OSError(errno).
#
# Power cuts: the block device counts every program and erase; with `cut_at` = n the power fails
# at operation n: that program writes only part of its bytes (a torn program) or that erase
# clears only part of the block, and nothing after it reaches the flash. The storage then raises
# PowerCut; remount() brings the flash back as a reboot would.
from littlefs import LittleFS, UserContext, lfs
from littlefs.errors import LittleFSError

from sim.memstorage import PowerCut

GEOMETRY = {"pico": (4096, 352), "pico_w": (4096, 212)}
PROG_SIZE = 256
READ_SIZE = 32
LOOKAHEAD = 32
BLOCK_CYCLES = 100

_F = lfs.LFSFileFlag
_APPEND = _F.wronly | _F.creat | _F.append
_WRITE = _F.wronly | _F.creat | _F.trunc
_READ = _F.rdonly


class FlashDevice(UserContext):
    # A RAM NOR flash: erased bytes read 0xFF; counts programs and erases; cuts the power.
    def __init__(self, block_size, block_count):
        super().__init__(block_size * block_count)
        self.block_size = block_size
        self.block_count = block_count
        self.progs = 0
        self.erases = 0
        self.ops = 0  # programs + erases
        self.cut_at = -1  # operation at which the power fails; -1 = never
        self.dead = False

    def _alive(self):
        if self.dead:
            return False
        n = self.ops
        self.ops += 1
        if n == self.cut_at:
            self.dead = True
        return True

    def prog(self, cfg, block, off, data):
        if not self._alive():
            return 0  # no power: nothing reaches the flash (littlefs is stopped right after)
        self.progs += 1
        if self.dead:
            data = data[: len(data) // 2]  # torn: the first half of the page made it
        start = block * self.block_size + off
        self.buffer[start : start + len(data)] = data
        return 0

    def erase(self, cfg, block):
        if not self._alive():
            return 0
        self.erases += 1
        n = self.block_size // 2 if self.dead else self.block_size  # torn: half erased
        start = block * self.block_size
        self.buffer[start : start + n] = b"\xff" * n
        return 0

    def snapshot(self):
        return bytearray(self.buffer)

    def restore(self, image):
        self.buffer[:] = image
        self.dead = False
        self.cut_at = -1


def mount(dev):
    # littlefs on `dev` with MicroPython's configuration (formats a blank device).
    cfg = {
        "block_size": dev.block_size,
        "block_count": dev.block_count,
        "read_size": READ_SIZE,
        "prog_size": PROG_SIZE,
        "cache_size": 4 * max(READ_SIZE, PROG_SIZE),
        "lookahead_size": LOOKAHEAD,
        "block_cycles": BLOCK_CYCLES,
    }
    try:
        return LittleFS(dev, mount=True, **cfg)
    except LittleFSError:
        fs = LittleFS(dev, mount=False, **cfg)
        fs.format()
        fs.mount()
        return fs


class LfsStorage:
    # rpfw.storage.FileStorage's methods on littlefs-python (root: the journal's folder).
    def __init__(self, dev, root="/journal", fs=None):
        self.dev = dev
        self.root = root
        self._cut_part = None
        self.fs = mount(dev) if fs is None else fs
        self.mkdir("")

    def cut_in_next_append(self, part):
        # The power fails in the next write to a file whose name holds `part` (the simulator's
        # plan_power_cut).
        self._cut_part = part

    def remount(self):
        # Power back on: mount what the flash holds now (littlefs recovers by itself).
        self.dev.dead = False
        self.dev.cut_at = -1
        self.fs = mount(self.dev)
        return self

    def _path(self, name):
        return self.root + "/" + name if name else self.root

    def _do(self, fn, *args):
        if self.dev.dead:
            raise PowerCut()
        try:
            result = fn(*args)
        except LittleFSError as e:
            if self.dev.dead:
                raise PowerCut() from None
            raise OSError(-e.code) from None
        except FileNotFoundError:
            raise OSError(2) from None
        if self.dev.dead:
            raise PowerCut()
        return result

    def mkdir(self, name):
        try:
            self._do(self.fs.mkdir, self._path(name))
        except (OSError, FileExistsError):
            pass  # already there

    def listdir(self):
        return self._do(self.fs.listdir, self.root)

    def free_blocks(self):
        # (block size, free blocks) as os.statvfs gives them on the keypad (see the top)
        return self.dev.block_size, self._do(statvfs_free, self.fs)

    def size(self, name):
        try:
            return self._do(self.fs.stat, self._path(name)).size
        except OSError:
            return -1

    def _read_all(self, name):
        f = lfs.file_open(self.fs.fs, self._path(name), _READ)
        try:
            return lfs.file_read(self.fs.fs, f, lfs.file_size(self.fs.fs, f))
        finally:
            lfs.file_close(self.fs.fs, f)

    def read(self, name):
        try:
            return bytes(self._do(self._read_all, name))
        except OSError:
            return None

    def read_into(self, name, offset, buf):
        def go():
            f = lfs.file_open(self.fs.fs, self._path(name), _READ)
            try:
                lfs.file_seek(self.fs.fs, f, offset, 0)
                return lfs.file_read(self.fs.fs, f, len(buf))
            finally:
                lfs.file_close(self.fs.fs, f)

        data = self._do(go)
        buf[: len(data)] = data
        return len(data)

    def _write(self, name, flags, parts):
        if self._cut_part is not None and self._cut_part in name:
            self._cut_part = None
            self.dev.cut_at = self.dev.ops  # the first program of this write is torn
        f = lfs.file_open(self.fs.fs, self._path(name), flags)
        try:
            for p in parts:
                if p is not None:
                    lfs.file_write(self.fs.fs, f, bytes(p))
        finally:
            lfs.file_close(self.fs.fs, f)  # the commit

    def append(self, name, data, more=None):
        self._do(self._write, name, _APPEND, (data, more))

    def write(self, name, data):
        self._do(self._write, name, _WRITE, (data,))

    def replace(self, name, data):
        self._do(self._write, name + ".tmp", _WRITE, (data,))
        self._do(self.fs.rename, self._path(name + ".tmp"), self._path(name))

    def remove(self, name):
        try:
            self._do(self.fs.remove, self._path(name))
        except OSError:
            pass


def statvfs_free(fs):
    # Free blocks as MicroPython's os.statvfs reports them for littlefs `fs` (see the top).
    folders = 0
    for top, dirs, files in fs.walk("/"):
        folders += len(dirs)
    return fs.block_count - fs.used_block_count - 2 * folders


# The firmware as `ratepad flash` lays it out (the bundle of firmware 0.1.0 from `ratepad fw
# build`: path, bytes), before the journal's folder exists: what shares the flash with the journal.
FIRMWARE_FILES = (
    ("lib/rpfw/__init__.mpy", 31), ("lib/rpfw/board.mpy", 589), ("lib/rpfw/codec.mpy", 7909),
    ("lib/rpfw/commands.mpy", 2016), ("lib/rpfw/core.mpy", 5433),
    ("lib/rpfw/debounce.mpy", 949), ("lib/rpfw/device.mpy", 4466),
    ("lib/rpfw/journal.mpy", 3721), ("lib/rpfw/link.mpy", 1352), ("lib/rpfw/rules.mpy", 2065),
    ("lib/rpfw/settings.mpy", 2302), ("lib/rpfw/storage.mpy", 901), ("lib/rpfw/ticks.mpy", 285),
    ("lib/rpfw/usbhid.mpy", 2326), ("board.json", 2699), ("boot.py", 1082), ("main.py", 687),
)


def install(fs, files):
    # Write `files` ((path, bytes or a size), ...) as `ratepad flash` does: each folder above a
    # file made outermost first, then the file in one go.
    for path, data in files:
        if isinstance(data, int):
            data = bytes(data)
        parts = path.strip("/").split("/")
        for i in range(1, len(parts)):
            folder = "/" + "/".join(parts[:i])
            try:
                fs.mkdir(folder)
            except FileExistsError:
                pass
        with fs.open("/" + path.strip("/"), "wb") as f:
            f.write(data)


def board_storage(board, firmware_bytes=None, firmware=None):
    # A keypad flash of `board` ("pico", "pico_w") with the firmware on it as `ratepad flash`
    # puts it: `firmware` ((path, bytes or size), ...), else FIRMWARE_FILES; or, with
    # `firmware_bytes`, that many bytes of .mpy files in /lib/rpfw. The journal's folder comes
    # after it, as on a keypad's first boot.
    bs, bc = GEOMETRY[board]
    dev = FlashDevice(bs, bc)
    fs = mount(dev)
    if firmware_bytes is not None:
        chunk = 2 * (bs - 8)  # two blocks with their CTZ pointers
        firmware = []
        while firmware_bytes > 0:
            n = chunk if firmware_bytes > chunk else firmware_bytes
            firmware.append(("lib/rpfw/m%d.mpy" % len(firmware), n))
            firmware_bytes -= n
    install(fs, FIRMWARE_FILES if firmware is None else firmware)
    return LfsStorage(dev, fs=fs)
