"""Config validation: every problem named by key path and line, no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from exporter.config import ConfigError, load_config, parse_config, parse_duration

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
