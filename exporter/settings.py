"""The configuration's keys, each declared once: a field of the frozen settings it fills.

A key's declaration (`Key`, in the field's metadata) says how its YAML value is read and checked,
what README's configuration table says of it, and how `--config.check` shows it. From these
exporter/configload.py derives the parser and the unknown-key check, and exporter/configreport.py
the `--config.check` summary and README's table; tests/test_config_keys.py holds all of them to
the declarations. To add a key: add a field with `key(...)` here, in the section it belongs to.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import MISSING, Field, dataclass, field, fields
from typing import Any, Literal

from exporter.apitoken import Token
from exporter.configvalues import (
    IntBetween,
    _above_zero,
    _bool,
    _readable_file,
    _regex,
    _regex_text,
    _string,
    _url,
)
from exporter.configvalues import parse_duration as _duration
from exporter.schedule import DEFAULT_GRACE, DEFAULT_TIMEZONE, ScheduleError, make_schedule

KEY = "key"


@dataclass(frozen=True, slots=True)
class Key:
    """How one configuration key is read, documented and shown."""

    help: str  # README's "Meaning"
    # Reads the YAML value (after ${VAR} expansion); None: its section's own code reads it.
    convert: Callable[[Any], Any] | None = None
    what: str = ""  # what `convert` expects, for "expected <what>, got <value>"
    many: bool = False  # a list: of values, each converted, or of entries of `section`
    section: type | None = None  # the settings its keys fill, for a key that holds keys
    # A rule on the read value: what is wrong with it, or None.
    check: Callable[[Any], str | None] | None = None
    required: bool = False
    default_text: str | None = None  # README's default, where not the field's default
    also: tuple[str, ...] = ()  # further YAML names it is read from (token_file)
    # --config.check shows it: "always", "set" (when not the default) or "own" (its section's
    # lines in exporter/configreport.py show it).
    summary: Literal["always", "set", "own"] = "always"
    show: Callable[[Any], str] = str
    one_row: bool = False  # README documents the entries of this list in one row


def declared(settings: type) -> Iterator[tuple[Field[Any], Key]]:
    """The fields of `settings` that are keys (made by `key`), in their order."""
    for f in fields(settings):
        if KEY in f.metadata:
            yield f, f.metadata[KEY]


def yaml_names(settings: type) -> set[str]:
    """The keys a YAML mapping of these settings may hold: the unknown-key check's list."""
    return {name for f, k in declared(settings) for name in (f.name, *k.also)}


def key_paths(settings: type, prefix: str = "") -> Iterator[tuple[str, Key]]:
    """Every key below `settings`, by its documented path (`workspaces[].discovery.include`)."""
    for f, k in declared(settings):
        path = prefix + f.name + ("[]" if k.many and k.section else "")
        yield path, k
        if k.section is not None:
            yield from key_paths(k.section, path + ".")


def _seconds(value: float) -> str:
    return f"{value:g}s"


def _lower(value: object) -> str:
    return str(value).lower()


def _patterns(value: tuple[str, ...]) -> str:
    return "[" + ", ".join(repr(p) for p in value) + "]"


# The declarations' makers run once, when this module is imported: mutation testing forks its
# mutants after that, so none of theirs could run. What they make is held key by key by
# tests/test_config_keys.py and tests/test_config_defaults.py.
# pragma: no mutate start
def key(default: Any = MISSING, **declaration: Any) -> Any:
    """A settings field that is a configuration key (see `Key`)."""
    return field(default=default, metadata={KEY: Key(**declaration)})


def _duration_key(default: float, help: str, **more: Any) -> Any:
    return key(default, help=help, convert=_duration, what="a duration", show=_seconds, **more)


def _flag(default: bool, help: str, **more: Any) -> Any:
    return key(default, help=help, convert=_bool, what="true or false", show=_lower, **more)


def _count(default: int, low: int, high: int, help: str) -> Any:
    return key(default, help=help, convert=IntBetween(low, high), what="an integer")


def _regexes(help: str, convert: Callable[[Any], Any] = _regex, **more: Any) -> Any:
    return key((), help=help, convert=convert, what="a regular expression", many=True, **more)


# pragma: no mutate end


def _schedule_problem(make: Callable[[], object]) -> str | None:
    """What make_schedule says is wrong (it names the problem and how it should look)."""
    try:
        make()
    except ScheduleError as error:
        return str(error)
    return None


def _cron_check(cron: str | None) -> str | None:
    return None if cron is None else _schedule_problem(lambda: make_schedule(cron))


def _timezone_check(zone: str) -> str | None:
    return _schedule_problem(lambda: make_schedule("* * * * *", zone))


@dataclass(frozen=True, slots=True)
class WorkflowRef:
    id: str = key(help="The workflow's id.", convert=_string, what="a workflow id", required=True)
    name: str | None = key(
        None, help="Overrides `workflow_name`.", convert=_string, what="a string"
    )
    schedule: str | None = key(
        None,
        help="A cron expression (five fields, e.g. `0 2 * * *`, or `@daily`) the workflow is "
        "expected to run on: exports `onepin_workflow_schedule_*`, for OnePinScheduledRunMissed. "
        "Wins over a schedule trigger (`collection.schedule_triggers`).",
        convert=_string, what="a cron expression", check=_cron_check, summary="own",
    )  # fmt: skip
    schedule_timezone: str = key(
        DEFAULT_TIMEZONE,
        help="The IANA time zone `schedule` is read in (e.g. `Europe/Berlin`).",
        convert=_string, what="a time zone name", check=_timezone_check, summary="own",
    )  # fmt: skip
    schedule_grace: float = _duration_key(
        DEFAULT_GRACE,
        "How long after an expected time a run may be created before the fire counts as missed.",
        summary="own",
    )


@dataclass(frozen=True, slots=True)
class Discovery:
    include: tuple[re.Pattern[str], ...] = _regexes(
        "Regexes on workflow names, when `workflows` is not set: only matching workflows."
    )
    exclude: tuple[re.Pattern[str], ...] = _regexes(
        "Regexes on workflow names, when `workflows` is not set: matching workflows are left out."
    )

    def selects(self, name: str) -> bool:
        if self.include and not any(p.search(name) for p in self.include):
            return False
        return not any(p.search(name) for p in self.exclude)


@dataclass(frozen=True, slots=True)
class Workspace:
    name: str = key(
        help="Value of the `workspace` label. Unique.",
        convert=_string, what="a non-empty string", required=True, summary="own",
    )  # fmt: skip
    api_url: str = key(
        help="OnePin API base URL, e.g. `https://api.onepin.ai`. The token is sent to this "
        "origin only.",
        convert=_url, what="an http(s) URL", required=True, summary="own",
    )  # fmt: skip
    token: Token = key(
        help="API key (needs `workflows:read`), or a file holding it, re-read when it changes.",
        default_text="one required", also=("token_file",), summary="own",
    )  # fmt: skip
    workspace_id: str | None = key(
        None,
        help="Optional `X-Workspace-Id` header; must match the key's workspace.",
        convert=_string, what="a string", summary="own",
    )  # fmt: skip
    workflows: tuple[WorkflowRef, ...] | None = key(
        None,
        help="Explicit list: `id`, optional `name` (overrides `workflow_name`), optional "
        "`schedule` (a cron expression the workflow runs on, e.g. `0 2 * * *`), "
        "`schedule_timezone` (default `UTC`) and `schedule_grace` (default `10m`): see "
        "[Missed schedules](#missed-schedules). A bare id is an entry without a name.",
        section=WorkflowRef, many=True, default_text="discover all", summary="own", one_row=True,
    )  # fmt: skip
    discovery: Discovery = key(Discovery(), help="", section=Discovery, summary="own")


@dataclass(frozen=True, slots=True)
class HttpSettings:
    timeout: float = _duration_key(
        10.0, "Per request, never past the scrape deadline.", check=_above_zero
    )
    max_concurrency: int = _count(16, 1, 1024, "Requests in flight per workspace.")
    max_retries: int = _count(
        2, 0, 10,
        "Retries on connection errors, 408, 429 (honouring `Retry-After`) and 5xx, with "
        "exponential backoff and jitter, only while the deadline allows.",
    )  # fmt: skip
    max_requests_per_minute: int | None = key(
        None,
        help="At most this many requests to the API in any 60 s window, retries included. A "
        "poll asks active runs' statuses and the catalogue first, then details; what does not "
        "fit keeps its last data (up until `stale_after`) and waits for the next poll. Unset: "
        "no limit.",
        convert=IntBetween(1, 1_000_000), what="an integer", default_text="none",
        summary="set",
    )  # fmt: skip
    ca_file: str | None = key(
        None,
        help="An extra CA (a PEM file) to trust for `api_url`.",
        convert=_string, what="a file path", check=_readable_file, summary="set",
    )  # fmt: skip
    insecure_skip_verify: bool = _flag(
        False, "Skip verifying the API's TLS certificate (never in production).", summary="set"
    )


@dataclass(frozen=True, slots=True)
class MetricSelection:
    """Which metric families are exported (kube-state-metrics style): a family is exported when
    its name fully matches an `include` regex (or `include` is empty) and no `exclude` regex."""

    include: tuple[str, ...] = _regexes(
        "Regexes on metric family names (full match, e.g. `onepin_run_.*`): only these "
        "families are exported. Empty: all.",
        _regex_text, show=_patterns,
    )  # fmt: skip
    exclude: tuple[str, ...] = _regexes(
        "Regexes on metric family names (full match; a counter's family name has no `_total`): "
        "these families are not exported, even if included.",
        _regex_text, show=_patterns,
    )  # fmt: skip

    def selects(self, family: str) -> bool:
        if self.include and not any(re.fullmatch(p, family) for p in self.include):
            return False
        return not any(re.fullmatch(p, family) for p in self.exclude)


@dataclass(frozen=True, slots=True)
class CollectionSettings:
    min_interval: float = _duration_key(10.0, "Scrapes closer than this reuse the last poll.")
    recent_runs: int = _count(
        20, 1, 100, "Newest runs listed per workflow when it has new runs (1-100)."
    )
    run_series: bool = _flag(True, "Export `onepin_run_*` for active runs.")
    stale_after: float = _duration_key(
        300.0,
        "How long a workflow that fails to refresh keeps serving its last good data.",
    )
    max_duration: float = _duration_key(30.0, "Upper bound on one poll.", check=_above_zero)
    runs_summary: bool = _flag(
        True,
        "Use *Runs Summary* for the average run duration, and for the run counts (so the pass "
        "ratio) of workflows whose catalogue entry has none (asked only when a workflow's "
        "finished runs change). Switched off by itself, with one warning, if the key gets "
        "401/403.",
    )
    run_nodes: bool = _flag(
        False,
        "Export the node(s) each active run is running now (one info series per running "
        "node): one *Get Run Steps* call per active run whose finished steps changed since the "
        "last poll. Needs `run_series`.",
        summary="set",
    )
    triggered_by_label: bool = _flag(
        False,
        "Label each active run's status series with its `triggered_by` user name (personal "
        "data: opt-in).",
        summary="set",
    )
    schedule_triggers: bool = _flag(
        False,
        "Watch the schedule trigger of each workflow without a `schedule` in the config, read "
        "from *Get Workflow* (`definition.triggers[]`): one call per workflow when first seen "
        "and when its `updated_at` changes.",
        summary="set",
    )
    metrics: MetricSelection = key(
        MetricSelection(), help="", section=MetricSelection, summary="set"
    )


@dataclass(frozen=True, slots=True)
class Config:
    workspaces: tuple[Workspace, ...] = key(
        help="", section=Workspace, many=True, required=True, summary="own"
    )
    http: HttpSettings = key(HttpSettings(), help="", section=HttpSettings)
    collection: CollectionSettings = key(CollectionSettings(), help="", section=CollectionSettings)
    source: str = "<config>"
