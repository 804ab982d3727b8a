"""The bridge's event streams against the agent's writer: ratings stored per second while
SSE clients are subscribed, next to a baseline with none, measured in the same run.

Ratings are submitted to the agent's writer as fast as it stores them (one producer, group
commit); the bridge fans every stored rating out to its streams. Runs: no subscriber (baseline);
100 subscribers reading; 250 subscribers that never read (100 admitted, 150 refused with 503; the
admitted ones fall behind and are dropped).

    python bench/bench_bridge.py [--seconds 5]
"""

from __future__ import annotations

import argparse
import http.client
import socket
import tempfile
import threading
import time
from pathlib import Path

from ratepad.agent import Agent, AgentConfig
from ratepad.agent.store import RatingItem
from ratepad.events import Rating
from ratepad.wire import codec


def rating(seq: int) -> Rating:
    return Rating("BENCH1", seq, 1, seq, 1_800_000_000_000 + seq, True, 1 + seq % 5, 5, "S1", 0,
                  codec.RatingFlags.UNPROMPTED)  # fmt: skip


def run(label: str, subscribers: int, reading: bool, seconds: float) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        cfg = AgentConfig(db=Path(tmp) / "b.db", listen=("127.0.0.1", 0))
        with Agent(cfg) as agent:
            assert agent.bridge is not None
            host, port = agent.bridge.address
            stop = threading.Event()
            socks: list[socket.socket] = []
            readers: list[threading.Thread] = []
            for _ in range(subscribers):
                if reading:

                    def read() -> None:
                        conn = http.client.HTTPConnection(host, port, timeout=30)
                        auth = {"Authorization": f"Bearer {agent.token}"}
                        conn.request("GET", "/v1/events", headers=auth)
                        resp = conn.getresponse()
                        while not stop.is_set() and resp.fp.readline():
                            pass
                        conn.close()

                    t = threading.Thread(target=read, daemon=True)
                    t.start()
                    readers.append(t)
                else:
                    s = socket.create_connection((host, port))
                    s.sendall(f"GET /v1/events HTTP/1.1\r\nHost: {host}:{port}\r\n"
                              f"Authorization: Bearer {agent.token}\r\n\r\n".encode())  # fmt: skip
                    socks.append(s)
            time.sleep(1.0)
            start_stored = agent.writer.stored
            seq = 1
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                for _ in range(500):
                    agent.writer.submit(RatingItem(rating(seq)))
                    seq += 1
                while agent.writer._queue.qsize() > 2000:
                    time.sleep(0.001)
            rate = (agent.writer.stored - start_stored) / seconds
            stop.set()
            for s in socks:
                s.close()
    print(f"| {label} | {rate:,.0f} |")
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    print("| run | ratings stored/s |\n|---|---|")
    base = run("baseline: no subscriber", 0, False, args.seconds)
    reading = run("100 SSE subscribers reading", 100, True, args.seconds)
    idle = run("250 SSE subscribers never reading", 250, False, args.seconds)
    print(f"\n100 reading: {reading / base:.2f}x the baseline; 250 idle: {idle / base:.2f}x")


if __name__ == "__main__":
    main()
