"""Every documented config default is what a config WITHOUT the key gets.

The list of keys and defaults is read from README.md's configuration table, so that a key added
there is checked without anyone remembering to add it here; and every setting the parser knows
must have a row. (Issue 17: `http.max_retries` defaulting to 0 went unnoticed because every
test config set it explicitly.)
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter.config import (
    CollectionSettings,
    Config,
    ConfigError,
    HttpSettings,
    Workspace,
    load_config,
    parse_config,
    parse_duration,
)

REPO = Path(__file__).resolve().parent.parent
MINIMAL = """\
workspaces:
  -
    name: prod
    api_url: https://api.onepin.test
    token: op_live_defaults0123
"""
# Defaults written in words in the table, and what the parsed config holds for them.
PROSE = {"none": None, "discover all": None}
REQUIRED = {"required", "one required"}


def documented() -> dict[str, str]:
    """Key path -> default cell, from the README's `## Configuration` table."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, str] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[0].startswith("`"):
            continue
        keys = [k.strip().strip("`") for k in cells[0].split(" / ")]
        defaults = [d.strip() for d in cells[1].split(" / ")]
        if len(defaults) == 1:
            defaults *= len(keys)
        assert len(defaults) == len(keys), f"README row {line!r}: keys and defaults do not pair"
        parent = keys[0].rsplit(".", 1)[0] + "." if "." in keys[0] else ""
        for key, default in zip(keys, defaults, strict=True):
            full = key if "." in key or not parent else parent + key  # `token_file` after a path
            rows[full] = default
    return rows


DOCUMENTED = documented()


def expected(cell: str) -> Any:
    """The parsed value a default cell stands for."""
    if cell in PROSE:
        return PROSE[cell]
    literal = cell.strip("`")
    assert cell == f"`{literal}`", f"default {cell!r}: add to PROSE how to read it"
    if literal in ("true", "false"):
        return literal == "true"
    if literal == "[]":
        return ()
    if re.fullmatch(r"\d+", literal):
        return int(literal)
    return parse_duration(literal)


def actual(config: Config, key: str) -> Any:
    """The parsed value of a documented key path, e.g. `workspaces[].discovery.include`."""
    node: Any = config
    for part in key.split("."):
        name = part.removesuffix("[]")
        node = getattr(node, name)
        if part.endswith("[]") and name == "workspaces":
            node = node[0]
    return node


def leaves(settings: type, prefix: str) -> Iterator[str]:
    """The paths of a section's settings, into the sections it holds (`collection.metrics.*`)."""
    for f in dataclasses.fields(settings):
        if dataclasses.is_dataclass(f.default):
            yield from leaves(type(f.default), f"{prefix}{f.name}.")
        else:
            yield prefix + f.name


def test_the_table_was_found() -> None:
    assert "http.max_retries" in DOCUMENTED and "collection.min_interval" in DOCUMENTED


@pytest.mark.parametrize(
    ("section", "settings"), [("http", HttpSettings), ("collection", CollectionSettings)]
)
def test_every_setting_has_a_documented_default(section: str, settings: type) -> None:
    fields = set(leaves(settings, f"{section}."))
    missing = fields - DOCUMENTED.keys()
    assert not missing, f"README's configuration table has no row for {sorted(missing)}"
    assert {k for k in DOCUMENTED if k.startswith(f"{section}.")} <= fields


def test_every_workspace_key_has_a_row() -> None:
    keys = {f"workspaces[].{f.name}" for f in dataclasses.fields(Workspace)} - {
        "workspaces[].discovery"  # documented as its include / exclude
    }
    rows = {k.removesuffix("[]") for k in DOCUMENTED}
    missing = {k for k in keys if k not in rows}
    assert not missing, f"README's configuration table has no row for {sorted(missing)}"


OPTIONAL = sorted(k for k, cell in DOCUMENTED.items() if cell not in REQUIRED)


@pytest.mark.parametrize(
    "sections",
    ["", "http: {}\ncollection: {}\n", "http:\ncollection:\n"],
    ids=["none", "empty", "null"],
)
@pytest.mark.parametrize("key", OPTIONAL)
def test_a_config_without_the_key_gets_the_documented_default(key: str, sections: str) -> None:
    config = parse_config(MINIMAL + sections)
    assert actual(config, key) == expected(DOCUMENTED[key]), key


@pytest.mark.parametrize("key", sorted(k for k, c in DOCUMENTED.items() if c in REQUIRED))
def test_a_config_without_a_required_key_is_an_error_naming_it(key: str) -> None:
    # Of a "one required" group (token / token_file), none is given.
    group = [k for k, c in DOCUMENTED.items() if c == DOCUMENTED[key] == "one required"] or [key]
    fields = [f" {k.rsplit('.', 1)[1]}:" for k in group]
    text = "\n".join(line for line in MINIMAL.splitlines() if not any(f in line for f in fields))
    with pytest.raises(ConfigError) as err:
        parse_config(text, "c.yaml")
    named = [k.replace("[]", "[0]") for k in group]
    assert any(
        any(f"{k}:" in p for k in named) and "is required" in p for p in err.value.problems
    ), err.value.problems


def test_the_example_config_shows_the_documented_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    """config.example.yaml sets (or shows in a comment) every http and collection key, with
    the README's default."""
    path = REPO / "config.example.yaml"
    monkeypatch.setenv("ONEPIN_API_TOKEN", "op_live_example")
    example = load_config(path)
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    text = path.read_text(encoding="utf-8")
    for key, cell in DOCUMENTED.items():
        section, _, name = key.partition(".")
        if section not in ("http", "collection"):
            continue
        *parents, leaf = name.split(".")  # collection.metrics.include: under `metrics:`
        given = raw.get(section) or {}
        for parent in parents:
            given = given.get(parent) or {}
        if leaf in given:
            assert actual(example, key) == expected(cell), f"{key} in config.example.yaml"
        else:
            shown = "".join(rf"^\s*#\s*{p}:\n(?:.*\n)*?" for p in parents) + (
                rf"^\s*#\s+{leaf}:" if parents else rf"^\s*# {leaf}:"
            )
            assert re.search(shown, text, re.M), f"{key} not in config.example.yaml"
