"""How the service runs the training CLI: its command line and the environment of its processes.

    >>> from service.training_cli import child_env, command
    >>> command("gif", "runs/cpu")[1:]
    ['-m', 'training', 'gif', 'runs/cpu']
    >>> "MICROGAN_API_KEY" in child_env()
    False
    >>> error_reason(["Traceback ...", "error: --count must be positive", "bye"])
    '--count must be positive'

The service never imports the training code; it runs `python -m training ...` as child processes (the
same interpreter as the service) and reads what they print and write. A training command that refuses
its input exits with status 2 and prints one line `error: <reason>` to stderr.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable


def command(*args: object) -> list[str]:
    """`python -m training <args>` with the service's own interpreter."""
    return [sys.executable, "-m", "training", *map(str, args)]


def child_env() -> dict[str, str]:
    """The children's environment: the service's, less the admin key (a trainer has no use for it)."""
    env = {k: v for k, v in os.environ.items() if k != "MICROGAN_API_KEY"}
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


def error_reason(lines: Iterable[str]) -> str | None:
    """The reason in the last `error: ...` line a training command printed; None when there is none."""
    reasons = [line.removeprefix("error: ") for line in lines if line.startswith("error: ")]
    return reasons[-1] if reasons else None
