"""How a run reports on itself outside its progress lines: status.json, train.log, signals.

    signals = Signals(); signals.install()        # SIGINT/SIGTERM set signals.received; the loop stops
    write_status(run_dir, state="running", ...)   # status.json, merged with what it held, atomically
    sys.stdout = Tee(sys.__stdout__, log)         # what the run prints also goes to train.log

status.json is the run's record of how it ended (state, exit_status, error, step, started, finished),
read by the service's jobs manager.
"""

from __future__ import annotations

import datetime
import json
import signal
from pathlib import Path

from training.files import write_atomic

EXIT_ON_SIGNAL: dict[int, int] = {signal.SIGINT: 130, signal.SIGTERM: 143}


def now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def write_status(run_dir: Path, **fields) -> None:
    path = run_dir / "status.json"
    current = json.loads(path.read_text()) if path.exists() else {}
    write_atomic(path, json.dumps({**current, **fields}, indent=2))


class Signals:
    def __init__(self):
        self.received: int | None = None

    def install(self) -> None:
        for sig in EXIT_ON_SIGNAL:
            signal.signal(sig, self._handle)

    def _handle(self, signum, _frame):
        self.received = signum


class Tee:
    """Copy what the run prints into train.log."""

    def __init__(self, stream, log):
        self.stream, self.log = stream, log

    def write(self, text):
        self.stream.write(text)
        self.log.write(text)
        return len(text)

    def flush(self):
        self.stream.flush()
        self.log.flush()

    def isatty(self):
        return self.stream.isatty()

    def __getattr__(self, name):
        return getattr(self.stream, name)
