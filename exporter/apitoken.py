"""The API token: checked to be sendable as a bearer credential, never shown, re-read from its file.

Its repr and str never show the value, so it cannot leak through logs or tracebacks.
"""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger("exporter.config")


class TokenError(ValueError):
    """A token that cannot be sent as a bearer credential; the message never shows it."""


def token_problem(value: str) -> str | None:
    """What makes a token unusable in an `Authorization: Bearer` header, without showing it.

    Printable ASCII only, and no quote or backslash: those are what a log line or an HTTP
    header would have to escape, after which the log scrubbing could no longer find the token."""
    for i, char in enumerate(value, 1):
        if "!" <= char <= "~" and char not in '"\\':
            continue
        if char in "\r\n":
            what = "a line break"
        elif char.isspace():
            what = "a space"
        elif not char.isprintable():
            what = "a control character"
        elif char.isascii():
            what = "a quote or backslash"
        else:
            what = "a non-ASCII character"
        return (
            f"the token holds {what} at character {i} of {len(value)}:"
            " a key is one line of printable ASCII, without quotes"
        )
    return None


class Token:
    """The API token, read from the config or from a file that is re-read when it changes.

    Its repr and str never show the value, so it cannot leak through logs or tracebacks.
    Surrounding whitespace (a token file's final newline) is removed; a token with a line break
    or control character inside is refused with `TokenError`.
    """

    def __init__(self, value: str | None = None, path: Path | None = None) -> None:
        self._value = _checked((value or "").strip())
        self._path = path
        self._mtime: float | None = None
        if path is not None:
            self._read(path)  # at start-up an unreadable file is an error (OSError, TokenError)

    @property
    def source(self) -> str:
        return f"token_file {self._path}" if self._path else "token"

    def refresh(self) -> bool:
        """Re-read the token file if it changed; True when the token value changed."""
        if self._path is None:
            return False
        try:
            if self._path.stat().st_mtime == self._mtime:
                return False
            old = self._value
            self._read(self._path)
        except OSError:
            return False  # keep the last token while the file is being replaced
        except TokenError as exc:  # keep the last token; said once per change of the file
            log.error("token file not used: %s", exc, extra={"token_file": str(self._path)})
            return False
        return self._value != old

    def _read(self, path: Path) -> None:
        self._mtime = path.stat().st_mtime
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise TokenError("the token is not UTF-8 text") from None
        self._value = _checked(text.strip())

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Token(<redacted>)"

    __str__ = __repr__


def _checked(value: str) -> str:
    problem = token_problem(value)
    if problem is not None:
        raise TokenError(problem)
    return value
