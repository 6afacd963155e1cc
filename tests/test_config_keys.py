"""Each configuration key is declared once (exporter/settings.py); the parser, the unknown-key
check, `--config.check`'s summary and README's table all cover every declared key (issue 14)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter.config import (
    Config,
    ConfigError,
    MetricSelection,
    describe,
    parse_config,
    parse_duration,
    reference_table,
)
from exporter.configvalues import duration_text
from exporter.settings import key_paths

REPO = Path(__file__).resolve().parent.parent
TOKEN = "op_live_every0123456789"

# A config that sets every key, each to a value that is not its default.
EVERY: dict[str, Any] = {
    "workspaces": [
        {
            "name": "ws-listed",
            "api_url": "https://listed.test",
            "token": TOKEN,
            "workspace_id": "wsid-7",
            "workflows": [
                "wf-bare",
                {
                    "id": "wf-named",
                    "name": "nightly-etl",
                    "schedule": "0 2 * * *",
                    "schedule_timezone": "Europe/Berlin",
                    "schedule_grace": "5m",
                },
            ],
        },
        {
            "name": "ws-found",
            "api_url": "https://found.test",
            "token_file": "token.txt",
            "discovery": {"include": ["^inc-"], "exclude": ["-exc$"]},
        },
    ],
    "http": {
        "timeout": "3s",
        "max_concurrency": 5,
        "max_retries": 4,
        "max_requests_per_minute": 600,
        "ca_file": "CA_FILE",
        "insecure_skip_verify": True,
    },
    "collection": {
        "min_interval": "11s",
        "recent_runs": 7,
        "run_series": False,
        "stale_after": "13s",
        "max_duration": "17s",
        "runs_summary": False,
        "run_nodes": True,
        "triggered_by_label": True,
        "schedule_triggers": True,
        "metrics": {"include": ["onepin_.*", "up"], "exclude": ["onepin_run_.*"]},
    },
}
# What --config.check shows of each key of EVERY.
SHOWN = {
    "workspaces[]": "workspace ws-listed: ",
    "workspaces[].name": "workspace ws-found: ",
    "workspaces[].api_url": "api_url=https://found.test ",
    "workspaces[].token": "ws-listed: api_url=https://listed.test credentials=token\n",
    "workspaces[].token_file": "credentials=token_file {dir}/token.txt\n",
    "workspaces[].workspace_id": "\n  workspace_id=wsid-7\n",
    "workspaces[].workflows[]": "\n  workflows: 2 listed\n",
    "workspaces[].workflows[].id": "\n    - wf-bare\n",
    "workspaces[].workflows[].name": "\n    - wf-named (nightly-etl) ",
    "workspaces[].workflows[].schedule": " schedule='0 2 * * *' ",
    "workspaces[].workflows[].schedule_timezone": " timezone=Europe/Berlin ",
    "workspaces[].workflows[].schedule_grace": " grace=300s\n",
    "workspaces[].discovery": "\n  workflows: discovered (",
    "workspaces[].discovery.include": "(include: ^inc-;",
    "workspaces[].discovery.exclude": "; exclude: -exc$)",
    "http": "\nhttp: ",
    "http.timeout": " timeout=3s ",
    "http.max_concurrency": " max_concurrency=5 ",
    "http.max_retries": " max_retries=4 ",
    "http.max_requests_per_minute": " max_requests_per_minute=600 ",
    "http.ca_file": " ca_file={dir}/ca.pem ",
    "http.insecure_skip_verify": " insecure_skip_verify=true\n",
    "collection": "\ncollection: ",
    "collection.min_interval": " min_interval=11s ",
    "collection.recent_runs": " recent_runs=7 ",
    "collection.run_series": " run_series=false ",
    "collection.stale_after": " stale_after=13s ",
    "collection.max_duration": " max_duration=17s ",
    "collection.runs_summary": " runs_summary=false ",
    "collection.run_nodes": " run_nodes=true ",
    "collection.triggered_by_label": " triggered_by_label=true ",
    "collection.schedule_triggers": " schedule_triggers=true ",
    "collection.metrics": " metrics.",
    "collection.metrics.include": " metrics.include=['onepin_.*', 'up'] ",
    "collection.metrics.exclude": " metrics.exclude=['onepin_run_.*']",
}


def declared_paths() -> set[str]:
    """Every declared key's path, with the further YAML names a key is read from."""
    paths = set()
    for path, k in key_paths(Config):
        paths.add(path)
        parent = path.rpartition(".")[0]
        paths.update(f"{parent}.{name}" if parent else name for name in k.also)
    return paths


def given_paths(node: Any, prefix: str = "") -> set[str]:
    """The key paths a YAML document sets (`workspaces[].discovery.include`)."""
    paths: set[str] = set()
    if isinstance(node, dict):
        for name, value in node.items():
            path = prefix + name + ("[]" if isinstance(value, list) else "")
            paths.add(path)
            if name not in ("include", "exclude"):  # lists of values, not of entries
                paths |= given_paths(value, path + ".")
    elif isinstance(node, list):
        for item in node:
            paths |= given_paths(item, prefix)
    return paths


@pytest.fixture
def every(tmp_path: Path) -> tuple[dict[str, Any], Path]:
    (tmp_path / "token.txt").write_text("op_live_fromfile0123\n")
    (tmp_path / "ca.pem").write_text("not read by the parser\n")
    data = copy.deepcopy(EVERY)
    data["http"]["ca_file"] = str(tmp_path / "ca.pem")
    return data, tmp_path


def parse(data: dict[str, Any], base: Path) -> Config:
    return parse_config(yaml.safe_dump(data), "every.yaml", base)


def test_the_config_that_sets_every_key_sets_every_declared_key() -> None:
    given = {p.removesuffix("[]") for p in given_paths(EVERY)}
    assert given == {p.removesuffix("[]") for p in declared_paths()}
    assert set(SHOWN) == declared_paths()


def test_config_check_shows_every_key_but_the_token(every: tuple[dict[str, Any], Path]) -> None:
    data, base = every
    summary = describe(parse(data, base))
    for path, text in SHOWN.items():
        assert text.format(dir=base) in summary, f"--config.check does not show {path}"
    assert TOKEN not in summary and "fromfile" not in summary


def rename(data: Any, parts: list[str], concrete: str = "") -> str:
    """Misspell the key at `parts` (the first entry of a list that has it); its concrete path."""
    name, rest = parts[0].removesuffix("[]"), parts[1:]
    if not rest:
        data[name + "x"] = data.pop(name)
        return f"{concrete}{name}x"
    for i, item in enumerate(data[name]) if parts[0].endswith("[]") else [(None, data[name])]:
        step = f"{concrete}{name}" + ("" if i is None else f"[{i}]") + "."
        if isinstance(item, dict) and rest[0].removesuffix("[]") in item:
            return rename(item, rest, step)
    raise AssertionError(f"EVERY does not set {parts}")


@pytest.mark.parametrize("path", sorted(declared_paths()))
def test_a_misspelt_key_is_refused_naming_the_declared_one(
    path: str, every: tuple[dict[str, Any], Path]
) -> None:
    data, base = every
    parse(data, base)  # as written, every key is known
    wrong = rename(data, path.split("."))
    with pytest.raises(ConfigError) as err:
        parse(data, base)
    name = path.rsplit(".", 1)[-1].removesuffix("[]")
    assert "every.yaml:" in err.value.problems[0]
    assert any(
        p.endswith(f": {wrong}: unknown key (did you mean {name!r}?)") for p in err.value.problems
    ), err.value.problems


def readme_table() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    start = section.index("| Key | Default | Meaning |")
    return section[start:].split("\n\n", 1)[0].strip()


def test_readme_documents_every_key_as_declared() -> None:
    assert readme_table() == reference_table(), (
        "README's configuration table differs from the declarations in exporter/settings.py: "
        "paste the output of `python -m exporter.configreport`"
    )
    rows = [row.split(" | ", 1)[0] for row in readme_table().splitlines()[2:]]
    for path in declared_paths():
        parent = path.rpartition(".")[0]
        named = (f"`{path}`", f"`{path.rpartition('.')[2]}`", f"`{parent}`")
        documented = any(name in row for row in rows for name in named)
        sections = [row for row in rows if f"`{path}." in row or f"`{path}[]." in row]
        assert documented or sections, f"README's table has no row for {path}"


def test_the_metric_selection_defaults_to_every_family() -> None:
    config = parse_config("workspaces: [{name: a, api_url: 'https://a.test', token: t}]\n")
    assert config.collection.metrics == MetricSelection(include=(), exclude=())
    assert config.collection.metrics.selects("onepin_workflow_up")


@pytest.mark.parametrize(
    ("include", "exclude", "family", "exported"),
    [
        ([], [], "onepin_workflow_run_duration_seconds", True),
        (
            [],
            ["onepin_workflow_run_duration_seconds"],
            "onepin_workflow_run_duration_seconds",
            False,
        ),
        ([], ["onepin_workflow_run_duration_seconds"], "onepin_workflow_up", True),
        ([], ["onepin_workflow"], "onepin_workflow_up", True),  # a full match, not a search
        (["onepin_run_.*"], [], "onepin_run_status", True),
        (["onepin_run_.*"], [], "onepin_workflow_up", False),
        (["onepin_run_.*"], ["onepin_run_status"], "onepin_run_status", False),  # exclude wins
        (["onepin_run_.*", "onepin_workflow_up"], [], "onepin_workflow_up", True),
    ],
)
def test_metric_families_are_selected_by_full_match_and_exclude_wins(
    include: list[str], exclude: list[str], family: str, exported: bool
) -> None:
    metrics = {"include": include, "exclude": exclude}
    text = yaml.safe_dump(
        {"workspaces": [{"name": "a", "api_url": "https://a.test", "token": "t"}],
         "collection": {"metrics": metrics}}
    )  # fmt: skip
    selection = parse_config(text).collection.metrics
    assert selection == MetricSelection(tuple(include), tuple(exclude))
    assert selection.selects(family) is exported


def test_a_bad_metric_regex_names_the_key_the_index_and_the_error() -> None:
    text = (
        "workspaces: [{name: a, api_url: 'https://a.test', token: t}]\n"
        "collection:\n"
        "  metrics:\n"
        "    include: [onepin_.*]\n"
        "    exclude: [onepin_run_.*, 'onepin_(workflow']\n"
    )
    with pytest.raises(ConfigError) as err:
        parse_config(text, "c.yaml")
    assert err.value.problems == [
        "c.yaml:5: collection.metrics.exclude[1]: expected a regular expression, got "
        "'onepin_(workflow': invalid regular expression (missing ), unterminated subpattern "
        "at position 7)"
    ]


@pytest.mark.parametrize(
    ("metrics", "problem"),
    [
        (
            "{include: onepin_up}",
            "collection.metrics.include: expected a list, got str 'onepin_up'",
        ),
        ("[onepin_up]", "collection.metrics: expected a mapping, got a list"),
        (
            "{include: [[x]]}",
            "collection.metrics.include[0]: expected a regular expression, got ['x']",
        ),
        ("{exclud: [x]}", "collection.metrics.exclud: unknown key (did you mean 'exclude'?)"),
    ],
)
def test_a_misshapen_metric_selection_is_a_clear_error(metrics: str, problem: str) -> None:
    workspaces = "workspaces: [{name: a, api_url: 'https://a.test', token: t}]\n"
    text = f"{workspaces}collection:\n  metrics: {metrics}\n"
    with pytest.raises(ConfigError) as err:
        parse_config(text, "c.yaml")
    assert err.value.problems == [f"c.yaml:3: {problem}"]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.5, "0.5s"),
        (10.0, "10s"),
        (59.0, "59s"),
        (60.0, "1m"),
        (90.0, "90s"),
        (300.0, "5m"),
        (3600.0, "1h"),
        (3660.0, "61m"),
        (7200.0, "2h"),
        (86400.0, "1d"),
        (86401.0, "86401s"),
        (172800.0, "2d"),
    ],
)
def test_readme_writes_a_default_duration_in_its_largest_whole_unit(
    seconds: float, text: str
) -> None:
    assert duration_text(seconds) == text
    assert parse_duration(text) == seconds  # what a config with that text reads
