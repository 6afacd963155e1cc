"""The configuration as people read it: the `--config.check` summary and README's key table.

Both are made from the keys' declarations (exporter/settings.py), so a new key shows in both.
Print README's table with `python -m exporter.configreport`.
"""

from __future__ import annotations

from dataclasses import Field
from typing import Any, cast

from exporter.configvalues import duration_text, parse_duration
from exporter.settings import Config, Key, WorkflowRef, Workspace, declared


def _shown(settings: Any, prefix: str = "") -> list[str]:
    """`key=value` of each key of a section that its declaration says to show (the sections of
    `Config` whose lines are their own are left to `describe`)."""
    default = type(settings)()
    parts: list[str] = []
    for f, k in declared(type(settings)):
        value = getattr(settings, f.name)
        if k.summary == "set" and value == getattr(default, f.name):
            continue
        if k.section is not None:
            parts.extend(_shown(value, f"{prefix}{f.name}."))
        else:
            parts.append(f"{prefix}{f.name}={k.show(value)}")
    return parts


def _workflow(w: WorkflowRef) -> str:
    text = f"    - {w.id}" + (f" ({w.name})" if w.name else "")
    if w.schedule is None:
        return text
    grace = f"{w.schedule_grace:g}s"
    return f"{text} schedule={w.schedule!r} timezone={w.schedule_timezone} grace={grace}"


def _workspace(ws: Workspace) -> list[str]:
    lines = [f"workspace {ws.name}: api_url={ws.api_url} credentials={ws.token.source}"]
    if ws.workspace_id:
        lines.append(f"  workspace_id={ws.workspace_id}")
    if ws.workflows is not None:
        lines.append(f"  workflows: {len(ws.workflows)} listed")
        lines.extend(_workflow(w) for w in ws.workflows)
    else:
        inc = ", ".join(p.pattern for p in ws.discovery.include) or "all"
        exc = ", ".join(p.pattern for p in ws.discovery.exclude) or "none"
        lines.append(f"  workflows: discovered (include: {inc}; exclude: {exc})")
    return lines


def describe(config: Config) -> str:
    """A redacted, human-readable summary for --config.check."""
    lines = [f"config {config.source} is valid"]
    for ws in config.workspaces:
        lines.extend(_workspace(ws))
    for f, k in declared(Config):
        if k.summary != "own":
            lines.append(f"{f.name}: " + " ".join(_shown(getattr(config, f.name))))
    return "\n".join(lines)


def _default_cell(f: Field[Any], k: Key) -> str:
    if k.default_text is not None:
        return k.default_text
    if k.required:
        return "required"
    if f.default is None:
        return "none"
    if k.many:
        return "`[]`"
    if isinstance(f.default, bool):
        return f"`{str(f.default).lower()}`"
    if k.convert is parse_duration:
        return f"`{duration_text(cast(float, f.default))}`"
    return f"`{f.default}`"


def _rows(settings: type, prefix: str = "") -> list[str]:
    rows = []
    for f, k in declared(settings):
        path = prefix + f.name + ("[]" if k.many and k.section is not None else "")
        if k.section is not None and not k.one_row:
            rows.extend(_rows(k.section, f"{path}."))
            continue
        names = " / ".join([f"`{path}`", *(f"`{name}`" for name in k.also)])
        rows.append(f"| {names} | {_default_cell(f, k)} | {k.help} |")
    return rows


def reference_table() -> str:
    """README's table of every configuration key: its path, default and meaning."""
    return "\n".join(["| Key | Default | Meaning |", "|---|---|---|", *_rows(Config)])


if __name__ == "__main__":
    print(reference_table())
