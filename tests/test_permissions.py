"""Files only the agent's user can touch: store, WAL, SHM, token and capture are 0600; a token
file someone else could have written is refused; the token is never printed; a store the agent
cannot write stops it at start."""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ratepad.agent import Agent, AgentConfig, ConfigError, Store
from ratepad.agent.config import load_or_create_token
from ratepad.cli.main import main

NOBODY = 65534
ROOT = os.geteuid() == 0


def agent(db: Path, device: str, listen: str, *extra: str) -> list[str]:
    """The command line of ``ratepad agent`` (as a subprocess)."""
    return [sys.executable, "-m", "ratepad", *agent_args(db, device, listen, *extra)]


def agent_args(db: Path, device: str, listen: str, *extra: str) -> list[str]:
    return ["agent", "--db", str(db), "--device", device, "--listen", listen, *extra]


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    old = os.umask(0o022)  # what a service gets by default: files 0644 unless asked otherwise
    yield
    os.umask(old)


def test_store_wal_and_shm_are_owner_only(tmp_path: Path) -> None:
    store = Store(tmp_path / "r.db")
    try:
        for name in ("r.db", "r.db-wal", "r.db-shm"):
            assert mode(tmp_path / name) == 0o600, name
    finally:
        store.close()


def test_an_old_world_readable_store_is_narrowed(tmp_path: Path) -> None:
    Store(tmp_path / "r.db").close()
    os.chmod(tmp_path / "r.db", 0o644)
    Store(tmp_path / "r.db").close()
    assert mode(tmp_path / "r.db") == 0o600


def test_token_file_is_created_owner_only(tmp_path: Path) -> None:
    token = load_or_create_token(tmp_path / "r.db.token")
    assert mode(tmp_path / "r.db.token") == 0o600
    assert load_or_create_token(tmp_path / "r.db.token") == token


@pytest.mark.parametrize("file_mode", [0o620, 0o602, 0o666])
def test_a_token_file_others_can_write_is_refused(tmp_path: Path, file_mode: int) -> None:
    path = tmp_path / "r.db.token"
    path.write_text("x" * 43 + "\n")
    os.chmod(path, file_mode)
    with pytest.raises(ConfigError, match="other users can write to it"):
        load_or_create_token(path)


@pytest.mark.skipif(not ROOT, reason="giving a file to another user needs root")
def test_a_token_file_of_another_user_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "r.db.token"
    path.write_text("y" * 43 + "\n")
    os.chmod(path, 0o600)
    os.chown(path, NOBODY, NOBODY)
    with pytest.raises(ConfigError, match="owned by another user"):
        load_or_create_token(path)


def test_a_token_in_a_folder_others_can_write_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "shared"
    folder.mkdir()
    os.chmod(folder, 0o777)  # no sticky bit: anyone may replace the file
    with pytest.raises(ConfigError, match="other users can write to its folder"):
        load_or_create_token(folder / "r.db.token")
    assert not (folder / "r.db.token").exists()


@pytest.mark.parametrize("dangling", [True, False])
def test_a_symlink_at_the_token_path_is_refused(tmp_path: Path, dangling: bool) -> None:
    target = tmp_path / "elsewhere"
    if not dangling:
        target.write_text("z" * 43 + "\n")
        os.chmod(target, 0o600)
    (tmp_path / "r.db.token").symlink_to(target)
    with pytest.raises(ConfigError, match="symbolic link"):
        load_or_create_token(tmp_path / "r.db.token")
    assert dangling is not target.exists()


def test_the_agent_refuses_a_bad_token_file_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "r.db.token").symlink_to(tmp_path / "nowhere")
    out = subprocess.run(
        agent(tmp_path / "r.db", "sim://T1", "127.0.0.1:0"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "symbolic link" in out.stderr
    assert "Traceback" not in out.stderr


def test_the_token_is_never_printed(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    proc = subprocess.Popen(
        agent(db, "sim://T2", "127.0.0.1:0"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines = []
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            lines.append(line)
            if "bridge http" in line:
                break
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    lines.append(out)
    text = "".join(lines) + err
    token = (tmp_path / "r.db.token").read_text().strip()
    assert proc.returncode == 0, err
    assert token not in text
    assert f"in {tmp_path / 'r.db.token'}" in text
    assert mode(tmp_path / "r.db.token") == 0o600


def test_capture_file_is_owner_only(tmp_path: Path) -> None:
    config = AgentConfig(
        devices=("sim://T3",), db=tmp_path / "r.db", listen=None, capture=tmp_path / "c.pcapng"
    )
    with Agent(config):
        assert mode(tmp_path / "c.pcapng") == 0o600


def test_capture_in_a_missing_folder_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        agent_args(
            tmp_path / "r.db", "sim://T4", "off", "--capture", str(tmp_path / "no" / "c.pcapng")
        )
    )
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "does not exist" in err


def _can_mount_read_only() -> bool:
    if not ROOT or shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", BIND_RO + " && true", "/tmp"],
        capture_output=True,
        timeout=30,
    )
    return probe.returncode == 0


# run a command with folder $0 read-only, in a mount namespace of its own (root only)
BIND_RO = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" "$0"'


@pytest.fixture
def read_only_store(tmp_path: Path) -> Iterator[tuple[Path, list[str]]]:
    """A store left by an agent killed while running (its -wal and -shm still there), on a
    file system the next agent cannot write: a read-only mount as root, else modes."""
    folder = tmp_path / "ro"
    folder.mkdir()
    db = folder / "r.db"
    subprocess.run(  # leaves r.db-wal and r.db-shm behind, as kill -9 would
        [sys.executable, "-c", f"import os, ratepad.agent as a; a.Store({str(db)!r}); os._exit(0)"],
        check=True,
        timeout=60,
    )
    assert (folder / "r.db-wal").exists()
    if ROOT:
        if not _can_mount_read_only():
            pytest.skip("root here cannot mount a folder read-only (unshare -m)")
        yield (
            db,
            [
                "unshare",
                "-m",
                "--propagation",
                "private",
                "sh",
                "-c",
                BIND_RO + ' && exec "$@"',
                str(folder),
            ],
        )
        return
    for p in folder.iterdir():
        os.chmod(p, 0o400)
    os.chmod(folder, 0o500)
    try:
        yield db, []
    finally:
        os.chmod(folder, 0o700)


def test_a_store_that_cannot_be_written_stops_the_agent_at_start(
    read_only_store: tuple[Path, list[str]],
) -> None:
    db, prefix = read_only_store
    out = subprocess.run(
        [*prefix, *agent(db, "sim://T5", "off")],
        capture_output=True,
        text=True,
        timeout=20,  # before the fix it ran on, logging store errors, until killed here
    )
    assert out.returncode == 2, out.stdout + out.stderr
    assert out.stderr.count("\n") == 1 and "readonly" in out.stderr, out.stderr
