"""What the public may read of an internal message: one line, no server paths.

    >>> from pathlib import Path
    >>> from service.redact import public_text
    >>> public_text("OSError: no file /srv/data/jobs/ab12/run/status.json", Path("/srv/data"))
    'OSError: no file jobs/ab12/run/status.json'
    >>> public_text("Traceback (most recent call last):\\n  File \\"/usr/lib/x.py\\", line 3\\nValueError: bad")
    'ValueError: bad'

Job errors, state-change details and model load failures keep their full text in the job record and
the server log; GET answers without the admin key carry this version: a traceback reduced to its last
line (the exception), other text to its first line, paths under the data dir or the models store
made relative to it, any other absolute path reduced to its file name, at most MAX_CHARS characters.
"""

from __future__ import annotations

import re
from pathlib import Path

MAX_CHARS = 300
_ABSOLUTE = re.compile(r"(?<![\w.~-])/(?:[^\s'\"/:,()\[\]{}]+/)*([^\s'\"/:,()\[\]{}]*)")


def public_text(text: str | None, *roots: Path) -> str | None:
    """`text` as the public may read it (None stays None)."""
    if text is None:
        return None
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return ""
    line = lines[-1] if lines[0].startswith("Traceback") else lines[0]
    for root in sorted({str(r.resolve()) for r in roots}, key=len, reverse=True):
        if root != "/":
            line = line.replace(root + "/", "").replace(root, ".")
    line = _ABSOLUTE.sub(lambda match: match.group(1) or "/", line)
    return line if len(line) <= MAX_CHARS else line[: MAX_CHARS - 3] + "..."
