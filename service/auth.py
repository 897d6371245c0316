"""The admin API key: where it comes from, and the constant-time check of a request's Bearer token.

    >>> import tempfile
    >>> from pathlib import Path
    >>> from service.auth import key_matches, load_or_create_key
    >>> data_dir = Path(tempfile.mkdtemp())
    >>> key = load_or_create_key(None, data_dir)          # MICROGAN_API_KEY, else <data_dir>/api_key (made once)
    >>> key_matches(key, key), key_matches(key, "guess")
    (True, False)

Secure by default: when MICROGAN_API_KEY is unset, the first start generates a random key, stores it
in `<data_dir>/api_key` with mode 0600 and logs that file's path (never the key itself).
"""

from __future__ import annotations

import hmac
import logging
import os
import secrets
from pathlib import Path

log = logging.getLogger(__name__)

KEY_FILE = "api_key"


def load_or_create_key(configured: str | None, data_dir: Path) -> str:
    """The configured key, else the one stored in data_dir, else a new one written there (0600)."""
    if configured:
        return configured
    path = data_dir.resolve() / KEY_FILE
    data_dir.mkdir(parents=True, exist_ok=True)
    if path.exists():
        return _stored_key(path)
    # Written whole under a private name, then linked into place: os.link fails when the name exists,
    # so of two processes starting at once one key wins, and no reader ever sees a half-written file.
    key = secrets.token_urlsafe(32)
    tmp = path.with_name(f".{KEY_FILE}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(key + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.link(tmp, path)
    except FileExistsError:
        return _stored_key(path)
    finally:
        tmp.unlink(missing_ok=True)
    log.warning("admin API key generated and stored in %s (mode 0600); send it as 'Authorization: Bearer <key>'", path)
    return key


def _stored_key(path: Path) -> str:
    key = path.read_text().strip()
    if not key:
        raise RuntimeError(f"{path} is empty: delete it to generate a new key, or set MICROGAN_API_KEY")
    if path.stat().st_mode & 0o077:
        log.warning("%s is readable by other users; chmod 600 it", path)
    log.info("admin API key: read from %s", path)
    return key


def key_matches(expected: str, given: str) -> bool:
    """Constant-time comparison, so response times do not leak how much of a guess was right."""
    return hmac.compare_digest(expected.encode(), given.encode())
