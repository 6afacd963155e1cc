"""One debug line per API request (`--log.level=debug`), and nothing at all at other levels.

The client calls `log_request` only when `log.isEnabledFor(DEBUG)`: a poll of 5,000 workflows
makes thousands of requests, and building their lines would cost CPU that nobody reads.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from urllib.parse import urlencode, urlsplit

log = logging.getLogger("exporter.client")

# Query parameters whose values are never logged, whatever an API or a proxy puts there. The
# token itself goes in a header; the log formatter scrubs it from every line besides.
_SECRET_PARAM = re.compile(r"token|key|secret|pass|auth|sig|credential|session", re.IGNORECASE)
REDACTED = "<redacted>"


def loggable_path(base: str, path: str, params: Mapping[str, str]) -> str:
    """The request's path and query, with the values of secret-looking parameters hidden."""
    shown = {k: (REDACTED if _SECRET_PARAM.search(k) else v) for k, v in params.items()}
    query = urlencode(shown, safe="<>")
    return urlsplit(base).path + path + (f"?{query}" if query else "")


def log_request(
    base: str,
    endpoint: str,
    path: str,
    params: Mapping[str, str],
    status: str,
    seconds: float,
    attempt: int,
) -> None:
    log.debug(
        "api request",
        extra={
            "method": "GET",
            "endpoint": endpoint,
            "path": loggable_path(base, path, params),
            "status": status,
            "duration": f"{seconds:.3f}s",
            "attempt": attempt,
        },
    )
