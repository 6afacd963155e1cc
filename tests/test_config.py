"""Config validation: every problem named by key path and line, no traceback."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from exporter.config import (
    ConfigError,
    Discovery,
    Token,
    WorkflowRef,
    describe,
    load_config,
    parse_config,
    parse_duration,
    token_problem,
)

GOOD = """\
workspaces:
  - name: production
    api_url: https://api.onepin.ai
    token: ${ONEPIN_TEST_TOKEN}
    workflows:
      - id: 3fa85f64-5717-4562-b3fc-2c963f66afa6
        name: nightly-etl
http: {timeout: 10s, max_concurrency: 16, max_retries: 2}
collection: {min_interval: 10s, recent_runs: 20, run_series: true, stale_after: 5m}
"""


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as err:
        parse_config(text, "c.yaml")
    return err.value.problems


def test_good_config_loads_with_env_expansion(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ONEPIN_TEST_TOKEN", "op_live_secret")
    config = parse_config(GOOD)
    ws = config.workspaces[0]
    assert ws.token.reveal() == "op_live_secret"
    assert ws.workflows is not None and ws.workflows[0].name == "nightly-etl"
    assert config.collection.stale_after == 300
    assert config.http.timeout == 10


def test_the_shipped_example_config_is_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ONEPIN_API_TOKEN", "op_live_example")
    config = load_config(Path(__file__).parent.parent / "config.example.yaml")
    assert config.workspaces


def test_unknown_key_is_named_with_its_line_and_a_suggestion() -> None:
    text = "workspaces:\n  - name: a\n    api_url: https://x.test\n    token: t\n    tokn: u\n"
    assert problems(text) == ["c.yaml:5: workspaces[0].tokn: unknown key (did you mean 'token'?)"]


def test_wrong_types_missing_env_and_bad_regex_are_all_reported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ONEPIN_MISSING", raising=False)
    text = """\
workspaces:
  - name: a
    api_url: ftp://x.test
    token: ${ONEPIN_MISSING}
    discovery:
      include: ['(unclosed']
http:
  timeout: ten seconds
  max_concurrency: many
collection:
  recent_runs: 500
  run_series: maybe
"""
    found = problems(text)
    expected = [
        "c.yaml:3: workspaces[0].api_url: expected an http(s) URL",
        "c.yaml:4: workspaces[0].token: environment variable ONEPIN_MISSING is not set",
        "c.yaml:6: workspaces[0].discovery.include[0]: expected a regular expression",
        "c.yaml:8: http.timeout: expected a duration",
        "c.yaml:9: http.max_concurrency: expected an integer",
        "c.yaml:11: collection.recent_runs: expected an integer, got 500: must be between 1",
        "c.yaml:12: collection.run_series: expected true or false",
    ]
    for prefix in expected:
        assert any(p.startswith(prefix) for p in found), (prefix, found)


def test_token_and_token_file(tmp_path: Path) -> None:
    secret = tmp_path / "token"
    secret.write_text("op_live_fromfile\n")
    text = f"workspaces:\n  - {{name: a, api_url: 'https://x.test', token_file: {secret}}}\n"
    assert parse_config(text).workspaces[0].token.reveal() == "op_live_fromfile"
    both = (
        f"workspaces:\n  - {{name: a, api_url: 'https://x.test', token: t, token_file: {secret}}}\n"
    )
    assert "set either token or token_file" in problems(both)[0]
    missing = "workspaces:\n  - {name: a, api_url: 'https://x.test', token_file: /nonexistent}\n"
    assert "cannot read" in problems(missing)[0]
    neither = "workspaces:\n  - {name: a, api_url: 'https://x.test'}\n"
    assert problems(neither) == ["c.yaml:2: workspaces[0].token: is required (or token_file)"]


def test_token_file_is_re_read_when_it_changes(tmp_path: Path) -> None:
    secret = tmp_path / "token"
    secret.write_text("op_live_one")
    token = (
        parse_config(
            f"workspaces:\n  - {{name: a, api_url: 'https://x.test', token_file: {secret}}}\n"
        )
        .workspaces[0]
        .token
    )
    assert not token.refresh()
    secret.write_text("op_live_two")
    import os

    os.utime(secret, (1, 1))
    assert token.refresh()
    assert token.reveal() == "op_live_two"


def test_duplicate_workspace_names_and_empty_files_are_errors() -> None:
    text = (
        "workspaces:\n  - {name: a, api_url: 'https://x.test', token: t}\n"
        "  - {name: a, api_url: 'https://y.test', token: t}\n"
    )
    assert "workspace name 'a' is used twice" in problems(text)[0]
    assert "empty" in problems("")[0]
    assert problems("workspaces: [\n")[0].startswith("c.yaml:")


@pytest.mark.parametrize(
    ("text", "seconds"), [("15s", 15), ("5m", 300), ("1h", 3600), ("250ms", 0.25), (30, 30)]
)
def test_durations(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_config_check_exits_non_zero_naming_the_key_without_traceback(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "workspaces:\n  - name: a\n    api_url: https://x.test\n    token: t\nhttp: {timeout: x}\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "exporter", "--config.check", f"--config.file={path}"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    assert f"{path}:5: http.timeout: expected a duration" in result.stderr
    assert "Traceback" not in result.stderr


def test_config_check_prints_a_redacted_summary(tmp_path: Path) -> None:
    path = tmp_path / "good.yaml"
    path.write_text(GOOD)
    token = "op_live_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6"
    result = subprocess.run(
        [sys.executable, "-m", "exporter", "--config.check", "--config.file", str(path)],
        capture_output=True, text=True, timeout=60, env={"ONEPIN_TEST_TOKEN": token, "PATH": ""},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "workspace production: api_url=https://api.onepin.ai credentials=token" in result.stdout
    assert token not in result.stdout + result.stderr


def test_an_empty_value_is_reported_as_missing_not_a_crash() -> None:
    assert problems("workspaces:\n  - name: a\n    api_url:\n    token: t\n") == [
        "c.yaml:3: workspaces[0].api_url: is required"
    ]


def test_a_missing_variable_is_one_problem(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ONEPIN_MISSING", raising=False)
    text = "workspaces:\n  - {name: a, api_url: 'https://x.test', token: '${ONEPIN_MISSING}'}\n"
    assert problems(text) == [
        "c.yaml:2: workspaces[0].token: environment variable ONEPIN_MISSING is not set"
    ]


@pytest.mark.parametrize(
    "url", ["https://api.onepin.ai/api/v1", "https://api.onepin.ai/api/v1/", "http://x.test/API/V1"]
)
def test_an_api_url_with_the_api_path_is_rejected_naming_the_origin(url: str) -> None:
    """The exporter adds /api/v1 itself: with it in api_url every poll would be a 404."""
    found = problems(f"workspaces:\n  - {{name: a, api_url: '{url}', token: t}}\n")
    assert len(found) == 1, found
    origin = url[: url.lower().index("/api/v1")]
    assert found[0].startswith("c.yaml:2: workspaces[0].api_url: "), found
    assert "without /api/v1" in found[0] and f"api_url: {origin}" in found[0], found


def test_an_api_url_under_a_proxy_prefix_is_kept() -> None:
    config = parse_config(
        "workspaces:\n  - {name: a, api_url: 'https://gw.test/onepin/', token: t}\n"
    )
    assert config.workspaces[0].api_url == "https://gw.test/onepin"


# --- each rule, by example (fast: these are what mutation testing runs) --------------------------

WS = "workspaces:\n  - {name: a, api_url: 'https://x.test', token: t}\n"


@pytest.mark.parametrize(
    ("section", "problem"),
    [
        ("http: {max_concurrency: 0}", "c.yaml:3: http.max_concurrency: expected an integer, "
         "got 0: must be between 1 and 1024"),
        ("http: {max_concurrency: 1025}", "c.yaml:3: http.max_concurrency: expected an integer, "
         "got 1025: must be between 1 and 1024"),
        ("http: {max_concurrency: true}", "c.yaml:3: http.max_concurrency: expected an integer, "
         "got True"),
        ("http: {max_concurrency: 2.5}", "c.yaml:3: http.max_concurrency: expected an integer, "
         "got 2.5"),
        ("http: {max_retries: 11}", "c.yaml:3: http.max_retries: expected an integer, got 11: "
         "must be between 0 and 10"),
        ("http: {max_retries: -1}", "c.yaml:3: http.max_retries: expected an integer, got -1: "
         "must be between 0 and 10"),
        ("http: {timeout: 0s}", "c.yaml:3: http.timeout: must be greater than 0"),
        ("http: {timeout: -5}", "c.yaml:3: http.timeout: expected a duration, got -5: "
         "must not be negative"),
        ("http: {ca_file: /nonexistent/ca.pem}", "c.yaml:3: http.ca_file: /nonexistent/ca.pem "
         "is not a readable file"),
        ("http: {insecure_skip_verify: yes please}", "c.yaml:3: http.insecure_skip_verify: "
         "expected true or false, got 'yes please'"),
        ("http: {tls: true}", "c.yaml:3: http.tls: unknown key"),
        ("http: 5", "c.yaml:3: http: expected a mapping, got int 5"),
        ("http: [1]", "c.yaml:3: http: expected a mapping, got a list"),
        ("collection: {recent_runs: 0}", "c.yaml:3: collection.recent_runs: expected an integer, "
         "got 0: must be between 1 and 100"),
        ("collection: {recent_runs: 101}", "c.yaml:3: collection.recent_runs: expected an "
         "integer, got 101: must be between 1 and 100"),
        ("collection: {max_duration: 0}", "c.yaml:3: collection.max_duration: must be greater "
         "than 0"),
        ("collection: {stale_after: soon}", "c.yaml:3: collection.stale_after: expected a "
         "duration, got 'soon'"),
        ("collection: {runs_summary: maybe}", "c.yaml:3: collection.runs_summary: expected true "
         "or false, got 'maybe'"),
        ("collection: {min_interval: true}", "c.yaml:3: collection.min_interval: expected a "
         "duration, got True"),
        ("collection: {run_seres: true}", "c.yaml:3: collection.run_seres: unknown key (did you "
         "mean 'run_series'?)"),
        ("collection: true", "c.yaml:3: collection: expected a mapping, got bool True"),
        ("colection: {}", "c.yaml:3: colection: unknown key (did you mean 'collection'?)"),
    ],
)  # fmt: skip
def test_each_setting_rule_names_the_key_line_and_value(section: str, problem: str) -> None:
    assert problems(WS + section + "\n") == [problem]


@pytest.mark.parametrize(
    ("section", "field", "value"),
    [
        ("http: {max_concurrency: '8'}", "max_concurrency", 8),
        ("http: {max_concurrency: 1}", "max_concurrency", 1),
        ("http: {max_concurrency: 1024}", "max_concurrency", 1024),
        ("http: {max_retries: 0}", "max_retries", 0),
        ("http: {max_retries: 10}", "max_retries", 10),
        ("http: {timeout: 250ms}", "timeout", 0.25),
        ("http: {insecure_skip_verify: 'TRUE'}", "insecure_skip_verify", True),
        ("http: {insecure_skip_verify: 'False'}", "insecure_skip_verify", False),
        ("http: {insecure_skip_verify: true}", "insecure_skip_verify", True),
    ],
)
def test_http_values(section: str, field: str, value: object) -> None:
    assert getattr(parse_config(WS + section).http, field) == value


@pytest.mark.parametrize(
    ("section", "field", "value"),
    [
        ("collection: {min_interval: 1.5m}", "min_interval", 90.0),
        ("collection: {stale_after: 1d}", "stale_after", 86400.0),
        ("collection: {max_duration: '20'}", "max_duration", 20.0),
        ("collection: {max_duration: 1s}", "max_duration", 1.0),
        ("collection: {max_duration: 500ms}", "max_duration", 0.5),
        ("collection: {recent_runs: 1}", "recent_runs", 1),
        ("collection: {recent_runs: 100}", "recent_runs", 100),
        ("collection: {run_series: false}", "run_series", False),
        ("collection: {runs_summary: false}", "runs_summary", False),
        ("collection: {triggered_by_label: true}", "triggered_by_label", True),
        ("collection: {run_series: ~}", "run_series", True),  # null: the default
    ],
)
def test_collection_values(section: str, field: str, value: object) -> None:
    assert getattr(parse_config(WS + section).collection, field) == value


def test_a_ca_file_that_exists_is_kept(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    assert parse_config(WS + f"http: {{ca_file: {ca}}}").http.ca_file == str(ca)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("1.5m", 90.0), (" 2s ", 2.0), ("10", 10.0), ("2d", 172800.0), (2.5, 2.5), ("0", 0.0)],
)
def test_more_durations(value: str | float, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize(
    ("value", "detail"),
    [(True, ""), ("5x", ""), ("", ""), (-1, "must not be negative"), ("-1s", "")],
)
def test_bad_durations(value: object, detail: str) -> None:
    with pytest.raises(ValueError) as err:
        parse_duration(value)
    assert str(err.value) == detail


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("ftp://x.test", "must be an http:// or https:// URL"),
        ("https://", "must be an http:// or https:// URL"),
        ("https://user:pw@x.test", "must not carry credentials; use token or token_file"),
        ("https://user@x.test", "must not carry credentials; use token or token_file"),
        ("https://x.test/?key=1", "must not have a query or fragment"),
        ("https://x.test/#top", "must not have a query or fragment"),
        ("   ", "must not be empty"),
    ],
)
def test_api_urls(url: str, problem: str) -> None:
    text = f"workspaces:\n  - {{name: a, api_url: '{url}', token: t}}\n"
    (found,) = problems(text)
    assert found.startswith("c.yaml:2: workspaces[0].api_url: expected an http(s) URL, got ")
    assert found.endswith(f": {problem}")


def test_api_url_trailing_slashes_are_dropped_and_names_may_be_numbers() -> None:
    ws = parse_config("workspaces:\n  - {name: 42, api_url: 'https://x.test/api//', token: t}\n")
    assert ws.workspaces[0].api_url == "https://x.test/api"
    assert ws.workspaces[0].name == "42"


def test_workflows_by_id_or_with_a_name() -> None:
    text = WS.replace("token: t}", "token: t, workspace_id: ws-7, workflows: [wf-1, "
                      "{id: wf-2, name: nightly}, {id: 3}]}")  # fmt: skip
    ws = parse_config(text).workspaces[0]
    assert ws.workspace_id == "ws-7"
    assert ws.workflows == (WorkflowRef("wf-1"), WorkflowRef("wf-2", "nightly"), WorkflowRef("3"))


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ("workflows: [{name: x}]", "c.yaml:2: workspaces[0].workflows[0].id: is required"),
        ("workflows: [{id: w, nam: x}]", "c.yaml:2: workspaces[0].workflows[0].nam: unknown key "
         "(did you mean 'name'?)"),
        ("workflows: {id: w}", "c.yaml:2: workspaces[0].workflows: expected a list, got a "
         "mapping"),
        ("workflows: [w], discovery: {include: [x]}", "c.yaml:2: workspaces[0].discovery: has no "
         "effect when workflows is set; remove one"),
        ("discovery: [x]", "c.yaml:2: workspaces[0].discovery: expected a mapping, got a list"),
        ("discovery: {include: x}", "c.yaml:2: workspaces[0].discovery.include: expected a list, "
         "got str 'x'"),
        ("discovery: {exclude: ['[']}", "c.yaml:2: workspaces[0].discovery.exclude[0]: expected "
         "a regular expression, got '[': invalid regular expression (unterminated character set "
         "at position 0)"),
        ("discovery: {only: [x]}", "c.yaml:2: workspaces[0].discovery.only: unknown key"),
        ("workspace_id: ''", "c.yaml:2: workspaces[0].workspace_id: expected a string, got '': "
         "must not be empty"),
    ],
)  # fmt: skip
def test_workspace_rules(extra: str, problem: str) -> None:
    assert problems(WS.replace("token: t}", f"token: t, {extra}}}")) == [problem]


def test_discovery_filters_names() -> None:
    text = WS.replace("token: t}", "token: t, discovery: {include: ['^prod-', 'etl'], "
                      "exclude: ['-tmp$']}}")  # fmt: skip
    discovery = parse_config(text).workspaces[0].discovery
    assert discovery.selects("prod-billing") and discovery.selects("nightly-etl")
    assert not discovery.selects("staging-billing")
    assert not discovery.selects("prod-billing-tmp")
    assert Discovery().selects("anything")
    assert not Discovery(exclude=(re.compile("x"),)).selects("box")


def test_env_expansion_and_a_literal_dollar(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ONEPIN_HOST", "x.test")
    monkeypatch.setenv("ONEPIN_KEY", "k")
    text = "workspaces:\n  - {name: 'a$$b', api_url: 'https://${ONEPIN_HOST}', token: '${ONEPIN_KEY}-$${ONEPIN_KEY}'}\n"  # noqa: E501
    ws = parse_config(text).workspaces[0]
    assert (ws.name, ws.api_url, ws.token.reveal()) == ("a$b", "https://x.test", "k-${ONEPIN_KEY}")


def test_every_missing_variable_of_a_value_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ONEPIN_A", raising=False)
    monkeypatch.delenv("ONEPIN_B", raising=False)
    text = WS.replace("token: t", "token: '${ONEPIN_A}${ONEPIN_B}'")
    assert problems(text) == [
        "c.yaml:2: workspaces[0].token: environment variable ONEPIN_A is not set",
        "c.yaml:2: workspaces[0].token: environment variable ONEPIN_B is not set",
    ]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("workspaces: []\n", "c.yaml:1: workspaces: needs at least one workspace"),
        ("workspaces: {a: 1}\n", "c.yaml:1: workspaces: expected a list, got a mapping"),
        ("workspaces:\n", "c.yaml:1: workspaces: is required"),
        ("- a\n", "c.yaml:1: : expected a mapping, got a list"),
        ("http: {}\n", "c.yaml:1: workspaces: is required"),
        ("workspaces:\n  - 5\n", "c.yaml:2: workspaces[0]: expected a mapping, got int 5"),
        (
            "workspaces: [\n",
            "c.yaml:2: invalid YAML: expected the node content, but found '<stream end>'",
        ),
    ],
)
def test_document_rules(text: str, problem: str) -> None:
    assert problems(text) == [problem]


def test_an_empty_or_blank_token_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("  \n")
    config = tmp_path / "c.yaml"
    config.write_text("workspaces:\n  - {name: a, api_url: 'https://x.test', token_file: token}\n")
    with pytest.raises(ConfigError) as err:
        load_config(config)
    assert err.value.problems == [
        f"{config}:2: workspaces[0].token_file: {tmp_path / 'token'} is empty"
    ]
    assert str(err.value) == err.value.problems[0]


def test_a_token_file_is_found_beside_the_config(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("op_live_beside\n")
    config = tmp_path / "c.yaml"
    config.write_text("workspaces:\n  - {name: a, api_url: 'https://x.test', token_file: token}\n")
    loaded = load_config(config)
    assert loaded.source == str(config)
    token = loaded.workspaces[0].token
    assert token.reveal() == "op_live_beside"
    assert token.source == f"token_file {tmp_path / 'token'}"


def test_a_config_file_that_cannot_be_read(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path / "none.yaml")
    assert err.value.problems == [
        f"{tmp_path / 'none.yaml'}: cannot read config file: No such file or directory"
    ]


def test_a_token_never_shows_and_keeps_its_value_while_its_file_is_replaced(
    tmp_path: Path,
) -> None:
    inline = Token("op_live_inline")
    assert repr(inline) == str(inline) == "Token(<redacted>)"
    assert inline.source == "token" and not inline.refresh()
    assert Token().reveal() == ""
    path = tmp_path / "token"
    path.write_text("op_live_one\n")
    token = Token(path=path)
    path.unlink()
    assert not token.refresh() and token.reveal() == "op_live_one"
    path.write_text("op_live_one")  # rewritten, same key: not a change
    os.utime(path, (5, 5))
    assert not token.refresh()
    os.utime(path, (6, 6))
    path.write_text("op_live_two")
    assert token.refresh() and token.reveal() == "op_live_two"
    assert not token.refresh()  # unchanged since


def test_describe_summarises_without_the_token(monkeypatch: pytest.MonkeyPatch) -> None:
    text = (
        "workspaces:\n"
        "  - {name: a, api_url: 'https://x.test', token: op_live_hidden, workspace_id: w7,"
        " workflows: [wf-1, {id: wf-2, name: etl}]}\n"
        "  - {name: b, api_url: 'https://y.test', token: t2, discovery: {include: ['^p', q],"
        " exclude: [x, y]}}\n"
        "  - {name: c, api_url: 'https://z.test', token: t3}\n"
        "http: {timeout: 2.5s, max_concurrency: 4, max_retries: 1, insecure_skip_verify: true}\n"
        "collection: {min_interval: 1m, recent_runs: 5, run_series: false, stale_after: 10m,"
        " max_duration: 20s, runs_summary: false}\n"
    )
    assert describe(parse_config(text, "x.yaml")).splitlines() == [
        "config x.yaml is valid",
        "workspace a: api_url=https://x.test credentials=token",
        "  workspace_id=w7",
        "  workflows: 2 listed",
        "    - wf-1",
        "    - wf-2 (etl)",
        "workspace b: api_url=https://y.test credentials=token",
        "  workflows: discovered (include: ^p, q; exclude: x, y)",
        "workspace c: api_url=https://z.test credentials=token",
        "  workflows: discovered (include: all; exclude: none)",
        "http: timeout=2.5s max_concurrency=4 max_retries=1 insecure_skip_verify=true",
        "collection: min_interval=60s recent_runs=5 run_series=false stale_after=600s "
        "max_duration=20s runs_summary=false",
    ]
    assert "hidden" not in describe(parse_config(text))
    plain = describe(parse_config(WS))
    assert "http: timeout=10s max_concurrency=16 max_retries=2\n" in plain
    assert plain.endswith("runs_summary=true")


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ("{name: [1], api_url: 'https://x.test', token: t}",
         "c.yaml:2: workspaces[0].name: expected a non-empty string, got [1]"),
        ("{name: {first: [1, {x: y}]}, api_url: 'https://x.test', token: t}", "c.yaml:2: "
         "workspaces[0].name: expected a non-empty string, got {'first': [1, {'x': 'y'}]}"),
        ("{name: true, api_url: 'https://x.test', token: t}",
         "c.yaml:2: workspaces[0].name: expected a non-empty string, got True"),
        ("{name: a, api_url: 'https://x.test', token: [1]}",
         "c.yaml:2: workspaces[0].token: expected a non-empty string, got [1]"),
        ("{name: a, api_url: 'https://x.test', token_file: [1]}",
         "c.yaml:2: workspaces[0].token_file: expected a file path, got [1]"),
        ("{name: a, api_url: 'https://x.test', token_file: ''}",
         "c.yaml:2: workspaces[0].token_file: expected a file path, got '': must not be empty"),
        ("{name: a, api_url: 'https://x.test', token: t, token_file: f}",
         "c.yaml:2: workspaces[0].token_file: set either token or token_file, not both"),
        ("{name: a, api_url: 'https://x.test', token_file: /nonexistent/token}",
         "c.yaml:2: workspaces[0].token_file: cannot read: No such file or directory"),
    ],
)  # fmt: skip
def test_workspace_values_of_the_wrong_kind_are_one_problem_each(entry: str, problem: str) -> None:
    assert problems(f"workspaces:\n  - {entry}\n") == [problem]


def test_two_workspaces_with_bad_names_are_not_also_duplicates() -> None:
    text = (
        "workspaces:\n  - {name: [1], api_url: 'https://x.test', token: t}\n"
        "  - {name: [2], api_url: 'https://y.test', token: t}\n"
    )
    assert problems(text) == [
        "c.yaml:2: workspaces[0].name: expected a non-empty string, got [1]",
        "c.yaml:3: workspaces[1].name: expected a non-empty string, got [2]",
    ]


def test_plain_http_urls_and_upper_case_paths_are_kept() -> None:
    text = "workspaces:\n  - {name: a, api_url: 'http://127.0.0.1:8080/BOX/', token: t}\n"
    assert parse_config(text).workspaces[0].api_url == "http://127.0.0.1:8080/BOX"


def test_all_problems_are_in_the_error_text() -> None:
    error = ConfigError(["c.yaml:1: a: bad", "c.yaml:2: b: bad"])
    assert str(error) == "c.yaml:1: a: bad\nc.yaml:2: b: bad"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (WS + "http: {ca_file: [1]}\n", "c.yaml:3: http.ca_file: expected a file path, got [1]"),
        (WS.replace("token: t}", "token: t, workflows: [{id: [1]}]}"),
         "c.yaml:2: workspaces[0].workflows[0].id: expected a workflow id, got [1]"),
        (WS.replace("token: t}", "token: t, workflows: [{id: w, name: [1]}]}"),
         "c.yaml:2: workspaces[0].workflows[0].name: expected a string, got [1]"),
        ("workspaces: \x07\n", "<config>: invalid YAML: unacceptable character #x0007: special "
         'characters are not allowed\n  in "<unicode string>", position 12'),
        ("workspaces: [a\n  b: ]\n", "<config>:2: invalid YAML: expected ',' or ']', but got ':'"),
        ("workspaces: []\n", "<config>:1: workspaces: needs at least one workspace"),
    ],
)  # fmt: skip
def test_more_problems_by_example(text: str, problem: str) -> None:
    """Without a source name, problems name '<config>'."""
    with pytest.raises(ConfigError) as err:
        parse_config(text)
    assert err.value.problems == [problem.replace("c.yaml", "<config>")]


def test_every_bad_workflow_entry_is_reported() -> None:
    text = WS.replace("token: t}", "token: t, workflows: [[x], {name: y}, wf-3]}")
    assert problems(text) == [
        "c.yaml:2: workspaces[0].workflows[0]: expected a mapping, got a list",
        "c.yaml:2: workspaces[0].workflows[1].id: is required",
    ]


def test_a_duplicate_name_is_named_with_its_line() -> None:
    text = (
        "workspaces:\n  - {name: a, api_url: 'https://x.test', token: t}\n"
        "  - {name: a, api_url: 'https://y.test', token: t}\n"
    )
    assert problems(text) == ["c.yaml:3: workspaces[1].name: workspace name 'a' is used twice"]


def test_a_complex_yaml_key_is_named_in_full() -> None:
    assert problems(WS + "? [x, {y: z}]\n: 1\n") == ["c.yaml:4: ['x', {'y': 'z'}]: unknown key"]


# --- a token that cannot be used: the error names its key and line, never the token ------------

BAD_TOKENS: list[tuple[str, bytes | None, str]] = [
    # (token, token file's content: then token_file is set, the problem after the path)
    ("op_live_abc def", None, "the token holds a space at character 12 of 15: a key is one line"
     " of printable ASCII, without quotes"),
    ("", b"op_live_\xff\n", "{file}: the token is not UTF-8 text"),
    ("", b"op_live_a\"b", "{file}: the token holds a quote or backslash at character 10 of 11:"
     " a key is one line of printable ASCII, without quotes"),
]  # fmt: skip


@pytest.mark.parametrize(("token", "content", "problem"), BAD_TOKENS)
def test_an_unusable_token_is_one_problem_at_its_line(
    tmp_path: Path, token: str, content: bytes | None, problem: str
) -> None:
    file = tmp_path / "token"
    if content is None:
        key, value = "token", f"'{token}'"
    else:
        file.write_bytes(content)
        key, value = "token_file", str(file)
    text = f"workspaces:\n  - name: a\n    api_url: https://x.test\n    {key}: {value}\n"
    assert problems(text) == [f"c.yaml:4: workspaces[0].{key}: " + problem.format(file=file)]


def test_a_token_file_rewritten_unusable_is_logged_once_naming_the_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    file = tmp_path / "token"
    file.write_text("op_live_good")
    token = Token(path=file)
    file.write_bytes(b"op_live_\xff")
    os.utime(file, (1, 1))
    with caplog.at_level("ERROR", logger="exporter.config"):
        assert not token.refresh()
        assert not token.refresh()  # the same file: not read, nor said, again
    assert [(r.getMessage(), getattr(r, "token_file", None)) for r in caplog.records] == [
        ("token file not used: the token is not UTF-8 text", str(file))
    ]
    assert token.reveal() == "op_live_good"


TOKEN_PROBLEMS: list[tuple[str, str | None]] = [
    ("op_live_!aZ9~X-._", None),  # printable ASCII, '!' to '~'
    ("ab cd", "a space at character 3 of 5"),
    ("ab\ncd", "a line break at character 3 of 5"),
    ("ab\x01", "a control character at character 3 of 3"),
    ("ab\\", "a quote or backslash at character 3 of 3"),
    ("abé", "a non-ASCII character at character 3 of 3"),
]


@pytest.mark.parametrize(
    ("token", "problem"), TOKEN_PROBLEMS, ids=["printable", "space", "LF", "control", "bs", "e"]
)
def test_token_problem_word_for_word(token: str, problem: str | None) -> None:
    expected = None
    if problem is not None:
        expected = (
            f"the token holds {problem}: a key is one line of printable ASCII, without quotes"
        )
    assert token_problem(token) == expected
