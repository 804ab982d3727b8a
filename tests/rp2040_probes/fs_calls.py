# Filesystem calls on a fresh board's root (tests/rp2040_facts.py FS_CALLS): errno numbers (None:
# the call succeeded), stat and statvfs tuples. Runs on MicroPython (raw REPL); leaves the root as
# it found it (empty).
import os
import sys


def err(f, *args):
    try:
        f(*args)
        return None
    except OSError as e:
        return e.errno


def read(path, mode="r"):
    with open(path, mode) as f:
        return f.read()


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def rmtree(path):
    if os.stat(path)[0] & 0x4000:
        for name in os.listdir(path):
            rmtree(path + "/" + name)
        os.rmdir(path)
    else:
        os.remove(path)


r = {}
r["listdir_fresh"] = os.listdir("/")
r["statvfs_fresh"] = os.statvfs("/")
r["sys_path"] = sys.path
r["mkdir_nested_missing_parent"] = err(os.mkdir, "/lib/rpfw")
os.mkdir("/d")
r["statvfs_one_dir"] = os.statvfs("/")
os.mkdir("/d/e")
r["statvfs_two_dirs_nested"] = os.statvfs("/")
r["mkdir_exists"] = err(os.mkdir, "/d")
r["open_missing"] = err(read, "/nope")
r["open_write_missing_dir"] = err(write, "/nodir/x", "")
r["remove_missing"] = err(os.remove, "/nope")
r["rmdir_nonempty"] = err(os.rmdir, "/d")
r["rmdir_missing"] = err(os.rmdir, "/nope")
r["remove_dir"] = err(os.remove, "/d/e")
r["rename_missing"] = err(os.rename, "/nope", "/x")
r["stat_missing"] = err(os.stat, "/nope")
r["listdir_missing"] = err(os.listdir, "/nope")
r["open_dir"] = err(read, "/d")
write("/f", "abc")
write("/g", "defg")
r["stat_file"] = os.stat("/f")[:7]
r["stat_dir"] = os.stat("/d")[:7]
r["mkdir_on_file"] = err(os.mkdir, "/f")
r["listdir_file"] = err(os.listdir, "/f")
r["open_under_file"] = err(write, "/f/x", "")
r["rename_file_onto_file"] = err(os.rename, "/g", "/f")
r["after_rename"] = (sorted(os.listdir("/")), read("/f"))
r["rename_file_onto_dir"] = err(os.rename, "/f", "/d")
r["rename_dir_onto_file"] = err(os.rename, "/d", "/f")
r["rmdir_file"] = err(os.rmdir, "/f")
r["before_cleanup"] = [(n, os.stat("/" + n)[0]) for n in sorted(os.listdir("/"))]
for name in os.listdir("/"):
    rmtree("/" + name)
r["statvfs_after_cleanup"] = os.statvfs("/")
r["ilistdir_root"] = list(os.ilistdir("/"))
print(repr(r))
