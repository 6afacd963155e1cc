"""Log lines: logfmt or JSON, and the token never in either (issue 17: a JSON formatter that
returned its line before redacting went unnoticed, the leak tests read logfmt only)."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import pytest

from exporter.logs import REDACTED, RedactingFormatter, setup_logging

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


# --- the line itself ----------------------------------------------------------------------------

CREATED = 1795953600.0  # 2026-11-29T12:00:00Z


def fixed(msg: str = "poll done", level: int = logging.INFO, **extra: Any) -> logging.LogRecord:
    rec = logging.LogRecord("exporter.poller", level, __file__, 1, msg, None, None)
    rec.created, rec.msecs = CREATED, 7.0
    rec.__dict__.update(extra)
    return rec


def test_a_logfmt_line_has_time_level_logger_message_and_fields_in_order() -> None:
    line = RedactingFormatter("logfmt", tuple).format(fixed(workspace="prod", polled=3))
    assert line == (
        'ts=2026-11-29T12:00:00.007Z level=info logger=exporter.poller msg="poll done" '
        "workspace=prod polled=3"
    )


def test_a_json_line_has_the_same_fields() -> None:
    line = RedactingFormatter("json", tuple).format(fixed(workspace="prod", polled=3))
    assert json.loads(line) == {
        "ts": "2026-11-29T12:00:00.007Z",
        "level": "info",
        "logger": "exporter.poller",
        "msg": "poll done",
        "workspace": "prod",
        "polled": 3,
    }
    assert list(json.loads(line)) == ["ts", "level", "logger", "msg", "workspace", "polled"]


@pytest.mark.parametrize(
    ("level", "name"),
    [
        (logging.DEBUG, "debug"),
        (logging.INFO, "info"),
        (logging.WARNING, "warn"),
        (logging.ERROR, "error"),
        (logging.CRITICAL, "error"),
    ],
)
@pytest.mark.parametrize("fmt", ["json", "logfmt"])
def test_levels_are_named_as_prometheus_exporters_name_them(
    fmt: str, level: int, name: str
) -> None:
    line = RedactingFormatter(fmt, tuple).format(fixed(level=level))
    got = json.loads(line)["level"] if fmt == "json" else line.split()[1]
    assert got == (name if fmt == "json" else f"level={name}")


def test_private_attributes_are_not_fields_and_an_exception_is_one_field() -> None:
    try:
        raise KeyError("wf-1")
    except KeyError as exc:
        rec = fixed(_private="hidden", error="lost", exc=None)
        rec.exc_info = (type(exc), exc, exc.__traceback__)
        del rec.__dict__["exc"]
    fields = json.loads(RedactingFormatter("json", tuple).format(rec))
    assert "_private" not in fields and fields["error"] == "lost"
    assert fields["exc"] == "KeyError: 'wf-1'"
    assert "Traceback" not in RedactingFormatter("logfmt", tuple).format(rec)


def test_a_record_without_exception_has_no_exc_field() -> None:
    rec = fixed()
    rec.exc_info = (None, None, None)  # as logging gives it for exc_info=True outside except
    assert "exc" not in json.loads(RedactingFormatter("json", tuple).format(rec))


def test_json_keeps_non_ascii_and_writes_other_values_as_text() -> None:
    line = RedactingFormatter("json", tuple).format(fixed("café ✓", path=Path("/etc/x")))
    assert "café ✓" in line
    assert json.loads(line)["path"] == "/etc/x"


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("plain", "plain"),
        ("eXtra-X", "eXtra-X"),
        ("", '""'),
        ("two words", '"two words"'),
        ("a=b", '"a=b"'),
        ('say "hi"', '"say \\"hi\\""'),
        ("C:\\temp", '"C:\\\\temp"'),
        ("line\nbreak", '"line\\nbreak"'),
        ("tab\there", r'"tab\there"'),  # a control character, escaped (no forged columns)
        (42, "42"),
    ],
)
def test_logfmt_values_are_quoted_and_escaped_when_needed(value: object, written: str) -> None:
    line = RedactingFormatter("logfmt", tuple).format(fixed(field=value))
    assert line.endswith(f" field={written}"), line


@pytest.mark.parametrize("fmt", ["json", "logfmt"])
def test_every_secret_is_redacted_and_short_or_empty_ones_are_left(fmt: str) -> None:
    secrets = ["", "abc", "k3y!", TOKEN]
    line = RedactingFormatter(fmt, lambda: secrets).format(
        fixed(f"keys {TOKEN} k3y! abc", workspace="prod")
    )
    assert TOKEN not in line and "k3y!" not in line
    assert f"keys {REDACTED} {REDACTED} abc" in line  # 3 characters: too short to be a key
    assert "workspace" in line and "prod" in line


# --- setup --------------------------------------------------------------------------------------


@pytest.fixture
def root_logging() -> Any:
    root = logging.getLogger()
    names = ("httpx", "httpcore", "aiohttp.access")
    saved = (list(root.handlers), root.level, {n: logging.getLogger(n).level for n in names})
    yield root
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in saved[0]:
        root.addHandler(handler)
    root.setLevel(saved[1])
    for name, level in saved[2].items():
        logging.getLogger(name).setLevel(level)


@pytest.mark.parametrize(
    ("level", "root_level", "httpx", "httpcore"),
    [
        ("debug", logging.DEBUG, logging.WARNING, logging.INFO),
        ("info", logging.INFO, logging.WARNING, logging.INFO),
        ("warn", logging.WARNING, logging.WARNING, logging.WARNING),
        ("error", logging.ERROR, logging.ERROR, logging.ERROR),
    ],
)
def test_setup_logging_sets_one_redacting_handler_and_quiets_the_libraries(
    root_logging: logging.Logger, level: str, root_level: int, httpx: int, httpcore: int
) -> None:
    root_logging.addHandler(logging.NullHandler())  # an earlier handler is replaced
    setup_logging(level, "json", lambda: [TOKEN])
    (handler,) = root_logging.handlers
    assert isinstance(handler, logging.StreamHandler) and handler.stream is sys.stderr
    formatter = handler.formatter
    assert isinstance(formatter, RedactingFormatter)
    assert json.loads(formatter.format(fixed(TOKEN)))["msg"] == REDACTED
    assert root_logging.level == root_level
    assert logging.getLogger("httpx").level == httpx
    assert logging.getLogger("httpcore").level == httpcore
    assert logging.getLogger("aiohttp.access").level == httpx


def test_setup_logging_defaults_to_info_logfmt_and_no_secrets(root_logging: logging.Logger) -> None:
    setup_logging()
    (handler,) = root_logging.handlers
    assert root_logging.level == logging.INFO
    assert handler.formatter is not None
    assert handler.formatter.format(fixed()).startswith("ts=2026-11-29T12:00:00.007Z level=info")
