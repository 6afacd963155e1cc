"""Logging in logfmt or JSON, with every known secret scrubbed from each line."""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

from exporter.redact import REDACTED, UNSAFE, escape, redactor_for

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}
LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "error": logging.ERROR,
}


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        + f".{int(record.msecs):03d}Z",
        "level": {"WARNING": "warn", "CRITICAL": "error"}.get(
            record.levelname, record.levelname.lower()
        ),
        "logger": record.name,
        "msg": record.getMessage(),
    }
    for key, value in record.__dict__.items():
        if key not in _STANDARD and not key.startswith("_"):
            fields[key] = value
    if record.exc_info and record.exc_info[0] is not None:
        fields["exc"] = f"{record.exc_info[0].__name__}: {record.exc_info[1]}"
    return fields


def _logfmt_value(value: Any) -> str:
    """A logfmt value; control characters escaped, so no value can forge or hide a line."""
    text = str(value)
    if text and not any(c in text for c in ' ="\\') and not UNSAFE.search(text):
        return text
    return '"' + escape(text.replace("\\", "\\\\").replace('"', '\\"')) + '"'


def _json_escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


class RedactingFormatter(logging.Formatter):
    """Formats a record as logfmt or JSON, then removes every current secret from the line."""

    def __init__(self, fmt: str, secrets: Callable[[], Iterable[str]]) -> None:
        super().__init__()
        self._json = fmt == "json"
        self._secrets = secrets

    def format(self, record: logging.LogRecord) -> str:
        fields = _fields(record)
        if self._json:
            # json.dumps escapes C0 controls; C1, separators and lone surrogates are left.
            line = UNSAFE.sub(_json_escape, json.dumps(fields, default=str, ensure_ascii=False))
        else:
            line = " ".join(f"{k}={_logfmt_value(v)}" for k, v in fields.items())
        # Whole and without the key type prefix. Tokens are RFC 6750 b64token characters,
        # which neither format escapes, so each appears in the line as it is.
        for secret in redactor_for(*self._secrets()).secrets:
            line = line.replace(secret, REDACTED)
        return line


def setup_logging(
    level: str = "info", fmt: str = "logfmt", secrets: Callable[[], Iterable[str]] = tuple
) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(RedactingFormatter(fmt, secrets))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(LEVELS[level])
    # httpx logs every request URL at INFO; keep it to debug-level detail of our own.
    logging.getLogger("httpx").setLevel(max(LEVELS[level], logging.WARNING))
    logging.getLogger("httpcore").setLevel(max(LEVELS[level], logging.INFO))
    logging.getLogger("aiohttp.access").setLevel(max(LEVELS[level], logging.WARNING))
