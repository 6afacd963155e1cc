"""API text made safe to show: secrets removed, control characters escaped, length bounded.

Every text the API sends that the exporter may show (error messages and codes, request ids,
content types, values quoted by decode errors) passes through `Redactor.clean` once, where it
enters the exporter (the client), and a response body that holds a secret is scrubbed before it
is parsed, so that names and other free texts taken from it (label values, run errors) hold no
secret either. Every sink (log lines, the landing page, labels, exceptions) therefore only sees
clean text; the log formatter scrubs each line again as a second line of defence.

Written here rather than taken from a library: what must go is this process's own API keys,
which no generic scrubber knows, and the cheap byte-level check of each body is what keeps this
off the per-request CPU budget.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

REDACTED = "<redacted>"
MESSAGE_LIMIT = 200
CODE_LIMIT = 64
REQUEST_ID_LIMIT = 80
# Shorter secrets are not looked for: replacing every "abc" would garble all text.
MIN_SECRET = 4
# Only the start of a text is looked at: the result is at most MESSAGE_LIMIT characters, and a
# secret of a few dozen characters shrinks to REDACTED, so what lies past this cannot be shown.
SCAN_LIMIT = 64 * 1024

# A key type prefix as in "op_live_", "op_test_", "pk_live_": an API may echo the key without it.
_KEY_PREFIX = re.compile(r"[a-z]{1,8}_(?:[a-z]{1,8}_)?")
# Any bearer credential, and anything shaped like a OnePin API key, whosever it is.
_CREDENTIAL = re.compile(r"(?i)\bbearer\s+\S+|\b(?:op|pk)_(?:live|test)_[A-Za-z0-9]+")
# What can forge or hide a log line or page text: C0 and C1 controls (CR, LF, ESC, ...), DEL,
# line and paragraph separators, bidirectional overrides, and lone surrogates (which cannot even
# be written as UTF-8).
UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
# A JSON escape of a letter or digit ("\u006f"): no usual encoder writes one, but an echo of a
# key written this way decodes to the key, which a search of the raw bytes would not find.
_ESCAPED_ALNUM = re.compile(rb"\\u00(?:3[0-9]|[46][1-9a-fA-F]|[57][0-9aA])")
_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def escape(text: str) -> str:
    """Control characters and the like as visible escapes (`\\r`, `\\x1b`, `\\u202e`)."""
    return UNSAFE.sub(_escape_one, text)


def _escape_one(match: re.Match[str]) -> str:
    char = match.group()
    known = _ESCAPES.get(char)
    if known is not None:
        return known
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def variants(secret: str) -> tuple[str, ...]:
    """The forms of a secret to remove: whole, and without its key type prefix."""
    found = [secret] if len(secret) >= MIN_SECRET else []
    prefix = _KEY_PREFIX.match(secret)
    if prefix is not None and len(secret) - prefix.end() >= MIN_SECRET:
        found.append(secret[prefix.end() :])
    return tuple(found)


class Redactor:
    """Removes a fixed set of secrets (and any bearer credential) from API text."""

    def __init__(self, secrets: Iterable[str]) -> None:
        forms = {form for secret in secrets for form in variants(secret)}
        # Longest first, so a whole key goes before its suffix and leaves no prefix behind.
        self.secrets = tuple(sorted(forms, key=len, reverse=True))
        # Looking for the shortest forms is enough: each longer one contains one of them.
        self._needles = tuple(
            form.encode() for form in forms if not any(o != form and o in form for o in forms)
        )

    def redact(self, text: str) -> str:
        """`text` without any secret or bearer credential; nothing else changes."""
        return _CREDENTIAL.sub(_credential, self._secrets_out(text))

    def clean(self, text: str, limit: int = MESSAGE_LIMIT) -> str:
        """API text fit to log or show: redacted, escaped, at most `limit` characters."""
        text = escape(self.redact(text[:SCAN_LIMIT]))
        return text if len(text) <= limit else text[: limit - 3] + "..."

    def suspect(self, raw: bytes) -> bool:
        """Whether a raw body may hold a secret: C-speed searches, almost always False.

        Measured on a 22 KB List Workflows page of 100 items: 15-25 us (json.loads of it:
        600 us); a 1 KB run status: 1-2 us. A body with backslashes also gets the regex
        search for escaped letters (~20-45 us per 22 KB)."""
        if not self._needles:
            return False
        return any(needle in raw for needle in self._needles) or (
            b"\\" in raw and _ESCAPED_ALNUM.search(raw) is not None
        )

    def scrub(self, body: Any) -> Any:
        """A decoded JSON body with every secret removed from every string, keys included.

        Iterative, so that a deeply nested body cannot exhaust the stack."""
        root: list[Any] = [body]
        stack: list[tuple[Any, Any]] = [(root, 0)]
        while stack:
            parent, key = stack.pop()
            value = parent[key]
            if isinstance(value, str):
                parent[key] = self._secrets_out(value)
            elif isinstance(value, list):
                stack.extend((value, i) for i in range(len(value)))
            elif isinstance(value, dict):
                renamed = {self._secrets_out(k) if isinstance(k, str) else k: v
                           for k, v in value.items()}  # fmt: skip
                value.clear()
                value.update(renamed)
                stack.extend((value, k) for k in value)
        return root[0]

    def _secrets_out(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text


def _credential(match: re.Match[str]) -> str:
    return "Bearer " + REDACTED if match.group()[:1] in "bB" else REDACTED


@lru_cache(maxsize=64)
def redactor_for(*secrets: str) -> Redactor:
    """The redactor of these secrets, built once (the token changes rarely)."""
    return Redactor(secrets)
