"""Log lines: logfmt or JSON, and the token never in either (issue 17: a JSON formatter that
returned its line before redacting went unnoticed, the leak tests read logfmt only)."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

import pytest

from exporter.logs import REDACTED, RedactingFormatter

TOKEN = "op_live_LOGtest0123456789abcdefghij"


def record(
    msg: str, *args: object, exc: BaseException | None = None, **extra: Any
) -> logging.LogRecord:
    exc_info = (type(exc), exc, None) if exc is not None else None
    rec = logging.LogRecord("exporter.poller", logging.WARNING, __file__, 1, msg, args, exc_info)
    rec.__dict__.update(extra)
    return rec


@pytest.mark.parametrize("fmt", ["json", "logfmt"])
def test_the_token_is_redacted_from_the_message_the_fields_and_the_exception(fmt: str) -> None:
    formatter = RedactingFormatter(fmt, lambda: [TOKEN])
    line = formatter.format(
        record(
            "request failed: Authorization: Bearer %s",
            TOKEN,
            exc=ValueError(f"bad header {TOKEN}"),
            workspace="prod",
            error=f"HTTP 401 for key {TOKEN}",
        )
    )
    assert TOKEN not in line
    assert TOKEN[8:20] not in line  # no part of it either
    assert line.count(REDACTED) == 3, line
    if fmt == "json":
        fields = json.loads(line)
        assert fields["msg"] == f"request failed: Authorization: Bearer {REDACTED}"
        assert fields["error"] == f"HTTP 401 for key {REDACTED}"
        assert fields["exc"] == f"ValueError: bad header {REDACTED}"
        assert fields["workspace"] == "prod"


def test_a_json_line_is_redacted_when_written_through_logging(
    capsys: pytest.CaptureFixture[str],
) -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(RedactingFormatter("json", lambda: [TOKEN]))
    log = logging.getLogger("exporter.test_logs")
    log.addHandler(handler)
    log.propagate = False
    try:
        log.error("key %s rejected", TOKEN, extra={"workspace": "prod"})
    finally:
        log.removeHandler(handler)
        log.propagate = True
    out = capsys.readouterr().out
    assert TOKEN not in out
    assert json.loads(out)["msg"] == f"key {REDACTED} rejected"
