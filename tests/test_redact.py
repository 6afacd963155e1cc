"""API text is redacted, escaped and bounded where it enters the exporter (exporter/redact.py),
and the log formatter scrubs and escapes every line again, in both log formats."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry

from exporter.client import ApiError, Deadline, OnePinClient
from exporter.config import HttpSettings, Token, TokenError, parse_config
from exporter.logs import RedactingFormatter
from exporter.redact import (
    MESSAGE_LIMIT,
    REDACTED,
    REQUEST_ID_LIMIT,
    Redactor,
    escape,
    redactor_for,
    variants,
)
from exporter.rendering import MetricsRenderer
from exporter.server import ServerState, landing_page
from exporter.wiring import build_poller
from tests.helpers import make_config, poll

KEY = "op_live_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6"
SUFFIX = KEY.removeprefix("op_live_")
R = Redactor([KEY])


@pytest.fixture(autouse=True)
def _new_redactors() -> None:
    """Each test makes the redactors it uses: one cached by an earlier test would not run
    Redactor's set-up (nor any planted bug in it)."""
    redactor_for.cache_clear()


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (f"bad key {KEY}", f"bad key {REDACTED}"),
        (f"bad key {SUFFIX}.", f"bad key {REDACTED}."),
        (f"header 'Bearer {KEY}'", f"header 'Bearer {REDACTED}"),
        ("authorization: bearer eyJhbGciOi.x.y, next", f"authorization: Bearer {REDACTED} next"),
        ("someone else's op_test_Zz9 key", f"someone else's {REDACTED} key"),
        ("pk_live_abc123 revoked", f"{REDACTED} revoked"),
        (KEY[:20] + SUFFIX, REDACTED + REDACTED),  # what is left of a cut key: key-shaped
        ("line one\r\nfake=entry level=error", "line one\\r\\nfake=entry level=error"),
        ("\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m"),
        ("c1 \x9b and del \x7f", "c1 \\x9b and del \\x7f"),
        ("lone \ud800 surrogate", "lone \\ud800 surrogate"),
        ("bidi \u202e and \u2028 separator", "bidi \\u202e and \\u2028 separator"),
        ("tab\there", "tab\\there"),
        ("plain text, ünïcode ok", "plain text, ünïcode ok"),
        ("", ""),
    ],
)
def test_clean_redacts_and_escapes(text: str, shown: str) -> None:
    assert R.clean(text) == shown


def test_clean_bounds_the_length_after_redacting() -> None:
    # A key just past the bound is removed before the text is cut, so no piece of it remains.
    text = "x" * (MESSAGE_LIMIT - 10) + KEY + "y" * 200_000
    shown = R.clean(text)
    assert len(shown) == MESSAGE_LIMIT and shown.endswith("...")
    assert KEY[:12] not in shown and SUFFIX[:6] not in shown
    assert len(R.clean("r" * 200_000, REQUEST_ID_LIMIT)) == REQUEST_ID_LIMIT
    # Escapes count towards the bound; a text that fits is kept whole.
    assert len(R.clean("\x1b" * 1000)) == MESSAGE_LIMIT
    assert R.clean("m" * MESSAGE_LIMIT) == "m" * MESSAGE_LIMIT


@pytest.mark.parametrize(
    ("secret", "forms"),
    [
        (KEY, (KEY, SUFFIX)),
        ("op_test_abcdefgh", ("op_test_abcdefgh", "abcdefgh")),
        ("eyJhbGciOiJIUzI1NiJ9.e30.sig", ("eyJhbGciOiJIUzI1NiJ9.e30.sig",)),
        ("op_live_ab", ("op_live_ab",)),  # a suffix too short to look for
        ("op_live_abcd", ("op_live_abcd", "abcd")),
        ("abcd", ("abcd",)),
        ("abc", ()),
    ],
)
def test_variants(secret: str, forms: tuple[str, ...]) -> None:
    assert variants(secret) == forms


@pytest.mark.parametrize(
    ("raw", "suspect"),
    [
        (b'{"data": [{"name": "etl"}]}', False),
        (b'{"data": [{"name": "caf\\u00e9 \\u003c"}]}', False),  # usual escapes
        (f'{{"name": "{KEY}"}}'.encode(), True),
        (f'{{"name": "{SUFFIX}"}}'.encode(), True),
        (b'{"name": "\\u006fp"}', True),  # an escaped letter: decode and look
    ],
)
def test_suspect_bodies(raw: bytes, suspect: bool) -> None:
    assert R.suspect(raw) is suspect
    assert Redactor([]).suspect(raw) is False  # no token, nothing to look for


def test_scrub_removes_secrets_from_every_string_and_key() -> None:
    body = json.loads(
        f'{{"data": [{{"name": "etl \\u006fp_live_{SUFFIX}", "{SUFFIX}": [1, "x {KEY}"]}}],'
        ' "n": 1}'
    )
    assert R.scrub(body) == {
        "data": [{"name": f"etl {REDACTED}", REDACTED: [1, f"x {REDACTED}"]}],
        "n": 1,
    }
    deep: object = KEY
    for _ in range(5000):  # deeper than the recursion limit
        deep = [deep]
    deep = R.scrub(deep)
    for _ in range(5000):
        assert isinstance(deep, list)
        deep = deep[0]
    assert deep == REDACTED


def test_escape_leaves_ordinary_text() -> None:
    assert escape('a b=c "d" ü') == 'a b=c "d" ü'


# --- the client: the one place API text enters --------------------------------------------------


def _client_error(status: int, body: bytes, headers: dict[str, str] | None = None) -> ApiError:
    def answer(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=body, headers=headers or {})

    async def go() -> ApiError:
        settings = HttpSettings(max_retries=0)
        client = OnePinClient("https://api.test", Token(KEY), settings,
                              transport=httpx.MockTransport(answer))  # fmt: skip
        try:
            if status == 200:  # a body that does not parse
                await client.get_run_status("wf", "run", Deadline(5))
            else:
                await client.list_workflows(Deadline(5))
        except ApiError as exc:
            return exc
        finally:
            await client.aclose()
        raise AssertionError("no error")

    return asyncio.run(go())


@pytest.mark.parametrize("status", [401, 500])
def test_api_error_texts_are_forged_into_nothing(status: int) -> None:
    body = json.dumps(
        {
            "error": {"code": "BAD\rlevel=error", "message": "x\r\nts=0 msg=forged\x1b[2J"},
            "meta": {"request_id": "r" * 200_000},
        }
    ).encode()
    error = _client_error(status, body)
    text = str(error)
    assert "\r" not in text and "\n" not in text and "\x1b" not in text
    assert error.request_id is not None and len(error.request_id) == REQUEST_ID_LIMIT
    assert len(text) < 400
    assert "x\\r\\nts=0 msg=forged\\x1b[2J" in text


def test_content_type_and_decode_errors_are_cleaned() -> None:
    error = _client_error(502, b"<html>", {"content-type": f"text/html\x1b[1m Bearer {KEY}"})
    assert KEY not in str(error) and "\x1b" not in str(error)
    # The decode error quotes the value, cut short: a cut key must be gone before the cut.
    bad = '{"data": {"id": ["%s"], "run_number": 1, "status": "x"}}' % ("\\r" * 9 + SUFFIX)
    error = _client_error(200, bad.encode())
    assert "unexpected response: data.id: expected a non-empty string" in str(error)
    assert SUFFIX[:8] not in str(error) and "\r" not in str(error)


# --- the log formatter: the second line of defence, in both formats ------------------------------


def _format(fmt: str, msg: str, *args: object, **extra: object) -> str:
    record = logging.LogRecord("exporter.test", logging.WARNING, "x", 1, msg, args, None)
    for key, value in extra.items():
        setattr(record, key, value)
    return RedactingFormatter(fmt, lambda: [KEY]).format(record)


@pytest.mark.parametrize("fmt", ["logfmt", "json"])
def test_the_formatter_scrubs_the_token_in_both_formats(fmt: str) -> None:
    line = _format(fmt, "failed: %s", f"crash holding {KEY}", detail=f"also {SUFFIX}")
    assert KEY not in line and SUFFIX not in line
    assert line.count(REDACTED) == 2


@pytest.mark.parametrize("fmt", ["logfmt", "json"])
def test_a_log_line_cannot_be_forged(fmt: str) -> None:
    forged = 'ok\rts=2026 level=error msg="forged"\n\x1b[2K\x9b\u2028\ud800'
    line = _format(fmt, "workflow not refreshed: %s", forged, workflow_id=forged)
    assert "\n" not in line and "\r" not in line and "\x1b" not in line
    assert "\x9b" not in line and "\u2028" not in line and "\ud800" not in line
    line.encode("utf-8")  # writable: no lone surrogate left
    if fmt == "json":
        fields = json.loads(line)
        assert fields["workflow_id"] == forged  # escaped, not changed
    else:
        assert line.split(" ")[1] == "level=warn"  # one record, its own fields first
        assert 'workflow_id="ok\\rts=2026 level=error msg=\\"forged\\"\\n\\x1b[2K' in line


# --- the token itself ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("op_live_abc\nop_live_def\n", "a line break at character 12"),
        ("op_live_abc\rdef", "a line break"),
        ("op_live_abc def", "a space"),
        ("op_live_abc\x00", "a control character"),
        ('op_live_ab"c', "a quote or backslash"),
        ("op_live_abcé", "a non-ASCII character"),
    ],
)
def test_a_token_that_cannot_be_sent_is_a_config_error(
    tmp_path: Path, content: str, problem: str
) -> None:
    secret = tmp_path / "token"
    secret.write_text(content)
    text = f"workspaces:\n  - {{name: a, api_url: 'https://x.test', token_file: {secret}}}\n"
    with pytest.raises(Exception) as err:
        parse_config(text, "c.yaml")
    message = str(getattr(err.value, "problems", err.value))
    assert problem in message
    assert "op_live_abc" not in message and "def" not in message
    with pytest.raises(TokenError, match=problem):
        Token(content)


def test_a_token_files_final_newline_is_dropped(tmp_path: Path) -> None:
    secret = tmp_path / "token"
    secret.write_text(KEY + "\r\n")
    text = f"workspaces:\n  - {{name: a, api_url: 'https://x.test', token_file: {secret}}}\n"
    assert parse_config(text).workspaces[0].token.reveal() == KEY
    assert Token(f" {KEY}\n").reveal() == KEY


def test_a_rewritten_token_file_with_a_newline_keeps_the_last_token(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    secret = tmp_path / "token"
    secret.write_text(KEY)
    token = Token(path=secret)
    secret.write_text("op_live_new\nop_live_other")
    os.utime(secret, (1, 1))
    with caplog.at_level(logging.ERROR):
        assert not token.refresh()
    assert token.reveal() == KEY
    assert "token file not used: the token holds a line break" in caplog.text
    assert "op_live_new" not in caplog.text


@pytest.mark.parametrize("fmt", ["logfmt", "json"])
def test_a_forging_error_body_gives_one_bounded_log_line_and_page_text(fmt: str) -> None:
    """CR, ESC and a 200 KB request_id from List Workflows: one escaped log line, a short page."""
    body = json.dumps(
        {
            "error": {
                "code": "E\x1b[2J",
                "message": "no\r\nts=0 level=info msg=forged\x1b]0;x\x07",
            },
            "meta": {"request_id": "r" * 200_000},
        }
    ).encode()
    config = make_config(api_url="https://api.test", token=KEY, http="{max_retries: 0}")
    poller = build_poller(
        config, transport=httpx.MockTransport(lambda _r: httpx.Response(500, content=body))
    )
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(RedactingFormatter(fmt, lambda: [KEY]))
    logger = logging.getLogger("exporter.poller")
    logger.addHandler(handler)
    try:
        snapshot = poll(poller)
    finally:
        logger.removeHandler(handler)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1 and "API unreachable" in lines[0], lines
    assert len(lines[0]) < 600 and "\r" not in lines[0] and "\x1b" not in lines[0]
    shown = "no\\r\\nts=0 level=info msg=forged\\x1b]0;x\\x07"  # escaped where it entered
    if fmt == "json":
        assert shown in json.loads(lines[0])["msg"]
    else:
        assert shown.replace("\\", "\\\\") in lines[0]  # and its backslashes by logfmt
    page = landing_page(ServerState(config, 0.0, CollectorRegistry(), MetricsRenderer()), snapshot)
    row = next(line for line in page.splitlines() if "HTTP 500" in line)
    assert len(row) < 800 and "\x1b" not in row and "\r" not in row


def test_a_token_file_rewritten_with_a_line_break_does_not_break_the_scrape(
    tmp_path: Path,
) -> None:
    """It made /metrics answer 500 (the poll raised building the Authorization header)."""
    secret = tmp_path / "token"
    secret.write_text(KEY + "\n")
    config = parse_config(
        f"workspaces:\n  - {{name: a, api_url: 'https://api.test', token_file: {secret}}}\n"
        "collection: {min_interval: 0s}\n"
    )
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["authorization"])
        return httpx.Response(200, json={"data": [], "pagination": {"total": 0}})

    poller = build_poller(config, transport=httpx.MockTransport(answer))
    assert poll(poller).workspaces[0].up
    secret.write_text(f"{KEY}\nop_live_second\n")
    os.utime(secret, (1, 1))
    assert poll(poller).workspaces[0].up
    assert seen == [f"Bearer {KEY}"] * 2  # the last good key, still


# --- a redactor made in the test (R above is built at import, before any mutant is active) -----

# A key type prefix the credential pattern does not know, and a suffix that sorts after the whole
# key: only the longest-first order leaves no piece of the key behind.
OTHER_KEY = "ab_live_zq9X8w7V6u5T"
OTHER_SUFFIX = OTHER_KEY.removeprefix("ab_live_")


@pytest.mark.parametrize(
    ("text", "shown", "scrubbed"),
    [
        (f"key {OTHER_KEY} refused", f"key {REDACTED} refused", f"key {REDACTED} refused"),
        (f"key {OTHER_SUFFIX} refused", f"key {REDACTED} refused", f"key {REDACTED} refused"),
        ("Bearer xyz", f"Bearer {REDACTED}", "Bearer xyz"),  # a body keeps others' credentials
        ("no secret here", "no secret here", "no secret here"),
    ],
)
def test_a_new_redactor_removes_the_whole_key_before_its_suffix(
    text: str, shown: str, scrubbed: str
) -> None:
    assert Redactor([OTHER_KEY]).redact(text) == shown
    assert Redactor([OTHER_KEY]).scrub({"m": [text]}) == {"m": [scrubbed]}


@pytest.mark.parametrize(
    ("raw", "suspect"),
    [
        (f'{{"name": "{OTHER_KEY}"}}'.encode(), True),
        (f'{{"name": "{OTHER_SUFFIX}"}}'.encode(), True),  # echoed without its prefix
        (b'{"name": "ab_live_"}', False),
        (b'{"name": "etl"}', False),
    ],
)
def test_a_new_redactor_suspects_a_body_with_the_key_or_its_suffix(
    raw: bytes, suspect: bool
) -> None:
    assert Redactor([OTHER_KEY]).suspect(raw) is suspect
