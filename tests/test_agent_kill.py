"""THE kill test: ``ratepad agent`` killed with SIGKILL at random moments loses nothing and
duplicates nothing.

The simulated keypads live in a helper process (this file run as a script) that survives the
agent: it serves them over TCP (``tcp://127.0.0.1:PORT/ID``), journals thousands of ratings into
them while the agent comes and goes, pulls their cables (disconnect/connect) and cycles their
power now and then. Each rating enters the journal exactly as the firmware's rating rules would
put it there (``Core.rate``), so the test is not paced by the thank-you time of real presses.

Checked after every kill: every rating a keypad has had ACKed is in the store (ACK follows
commit). Checked at the end: the store holds exactly journal seqs 1..N of every keypad, once
each, with the right scores, and every journal is fully ACKed.
"""

from __future__ import annotations

import json
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

import pytest

KEYPADS = 3
RATINGS = 1000  # per keypad
KILLS = 10
SETTINGS = {"status_ms": 1000, "ack_timeout_ms": 1000}


# -- the helper process ----------------------------------------------------------------------
def _inject(kp: Any, score: int) -> int:
    """Journal one rating on a RealtimeKeypad as its rating rules would; returns its seq."""
    with kp._cond:
        sk = kp.keypad
        sk.advance_to(kp.now_ms())
        now = sk.ticks(sk.now_ms)
        flags = 0x1  # unprompted
        if not sk.core.rate(score - 1, score, flags, 0, b"S001", now):
            raise RuntimeError("journal refused a rating")
        seq = int(sk.core.journal.next_seq - 1)
        sk.core.step(sk.raw, now)  # one scan: the core sends it if the link is up
        kp._cond.notify_all()
        return seq


def serve(keypads: int, ratings: int, seed: int, seconds: float) -> None:
    import ratepad.sim
    from ratepad.sim.serve import serve as serve_tcp

    ids = [f"K{i + 1}" for i in range(keypads)]
    kps = {i: ratepad.sim.get(i, SETTINGS) for i in ids}
    server = serve_tcp(("127.0.0.1", 0), kps.get)
    scores: dict[str, list[int]] = {i: [] for i in ids}
    faults: list[str] = []
    lock = threading.Lock()
    out = sys.stdout

    def produce() -> None:
        rng = random.Random(seed)
        total = keypads * ratings
        pause = seconds / total
        next_fault = time.monotonic() + 1.0
        for n in range(total):
            device = ids[n % keypads]
            score = rng.randint(1, 5)
            with lock:
                seq = _inject(kps[device], score)
                scores[device].append(score)
                assert seq == len(scores[device]), (device, seq)
            if time.monotonic() >= next_fault:
                next_fault = time.monotonic() + rng.uniform(0.5, 1.5)
                victim = kps[rng.choice(ids)]
                if rng.random() < 0.6:  # cable out and back in; ratings keep coming meanwhile
                    victim.disconnect()
                    threading.Timer(rng.uniform(0.05, 0.4), victim.connect).start()
                    faults.append("replug")
                else:
                    victim.power_cycle()
                    faults.append("power_cycle")
            time.sleep(pause)

    producer = threading.Thread(target=produce, daemon=True)
    producer.start()
    out.write(f"PORT {server.server_address[1]}\n")
    out.flush()
    for line in sys.stdin:
        if line.strip() == "status":
            with lock:
                state = {
                    i: {
                        "made": len(scores[i]),
                        "acked": int(kps[i].keypad.core.journal.ack_seq),
                        "unacked": int(kps[i].keypad.core.journal.unacked()),
                        "scores": scores[i],
                    }
                    for i in ids
                }
            out.write(
                json.dumps({"done": not producer.is_alive(), "faults": faults, "keypads": state})
                + "\n"
            )
            out.flush()
        elif line.strip() == "quit":
            break
    server.shutdown()


# -- the test ----------------------------------------------------------------------------------
class Helper:
    def __init__(self, seed: int, seconds: float) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "serve",
                str(KEYPADS),
                str(RATINGS),
                str(seed),
                str(seconds),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.stdin: IO[str] = self.proc.stdin
        self.stdout: IO[str] = self.proc.stdout
        line = self.stdout.readline()
        assert line.startswith("PORT "), line
        self.port = int(line.split()[1])

    def status(self) -> dict[str, Any]:
        self.stdin.write("status\n")
        self.stdin.flush()
        result: dict[str, Any] = json.loads(self.stdout.readline())
        return result

    def close(self) -> None:
        try:
            self.stdin.write("quit\n")
            self.stdin.flush()
            self.proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()


def stored(db: Path) -> dict[str, dict[int, int]]:
    """serial -> {seq: score} in the store (read-only, while the agent may be writing)."""
    if not db.exists():
        return {}
    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT serial, journal_seq, score FROM ratings").fetchall()
        dupes = conn.execute(
            "SELECT COUNT(*) FROM (SELECT 1 FROM ratings GROUP BY serial, journal_seq"
            " HAVING COUNT(*) > 1)"
        ).fetchone()[0]
    except sqlite3.OperationalError:  # not created yet
        return {}
    finally:
        conn.close()
    assert dupes == 0
    out: dict[str, dict[int, int]] = {}
    for serial, seq, score in rows:
        out.setdefault(serial, {})[seq] = score
    return out


def check_acked_are_stored(helper: Helper, db: Path) -> dict[str, Any]:
    status = helper.status()  # ACK points first, then the store: the store can only be ahead
    have = stored(db)
    for serial, k in status["keypads"].items():
        missing = [s for s in range(1, k["acked"] + 1) if s not in have.get(serial, {})]
        assert not missing, f"{serial}: ACKed but not stored: {missing[:10]}"
    return status


def start_agent(config: Path, log: IO[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "ratepad", "agent", "--config", str(config)],
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.mark.timeout(120)
def test_sigkill_at_random_moments_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    helper = Helper(seed, seconds=14.0)
    db = tmp_path / "ratings.db"
    config = tmp_path / "agent.toml"
    devices = ", ".join(f'"tcp://127.0.0.1:{helper.port}/K{i + 1}"' for i in range(KEYPADS))
    config.write_text(
        f'devices = [{devices}]\ndb = "ratings.db"\nlisten = "off"\n'
        "[link]\nstall_s = 2.5\nhello_check_s = 0.5\n"
    )
    log_path = tmp_path / "agent.log"
    kills = 0
    try:
        with log_path.open("w") as log:
            while kills < KILLS:
                agent = start_agent(config, log)
                time.sleep(rng.uniform(0.3, 1.6))
                agent.send_signal(signal.SIGKILL)
                agent.wait()
                kills += 1
                check_acked_are_stored(helper, db)
            # the last agent runs until everything is in, then stops gracefully
            agent = start_agent(config, log)
            end = time.monotonic() + 60
            while True:
                status = check_acked_are_stored(helper, db)
                have = stored(db)
                complete = status["done"] and all(
                    k["unacked"] == 0 and len(have.get(s, {})) == k["made"]
                    for s, k in status["keypads"].items()
                )
                if complete:
                    break
                assert time.monotonic() < end, f"not converging (seed {seed}): {have.keys()}"
                time.sleep(0.2)
            agent.send_signal(signal.SIGTERM)
            assert agent.wait(timeout=15) == 0
    finally:
        helper.close()
    have = stored(db)
    for serial, k in status["keypads"].items():
        assert k["made"] == RATINGS
        expected = {seq: score for seq, score in enumerate(k["scores"], start=1)}
        assert have[serial] == expected, f"{serial} (seed {seed})"
    assert sum(map(len, have.values())) == KEYPADS * RATINGS
    assert len(status["faults"]) >= 5, status["faults"]  # replugs and power cycles happened
    text = log_path.read_text()
    assert "Traceback" not in text, text[-3000:]


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        serve(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]))
