"""``sendalerts``: the alerts' deliveries and the periodic maintenance, in a process of its own
(``ratepad server sendalerts``), until SIGTERM or SIGINT; ``--once``: one round with every
periodic step, then exit (for cron)."""

from __future__ import annotations

import signal
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ... import worker


class Command(BaseCommand):
    help = "Send the alerts' e-mails and webhook calls and run the periodic maintenance."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true", help="one round with every periodic "
                            "step (silent agents, partitions ahead), then exit")  # fmt: skip
        parser.add_argument("--interval", type=float, default=1.0, metavar="SECONDS",
                            help="between two rounds (default 1)")  # fmt: skip

    def handle(self, *args: Any, once: bool, interval: float, **options: Any) -> None:
        if not 0.1 <= interval <= 3600:
            raise CommandError("--interval: expected 0.1..3600 seconds")
        if once:
            done = worker.run_once(every_step=True)
            self.stdout.write(f"sendalerts: {done} deliveries handled")
            return

        def stop(sig: int, frame: FrameType | None) -> None:
            worker.request_stop()  # the row being sent is finished first

        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, stop)
        worker.run(interval)
        self.stdout.write("sendalerts: stopped")
