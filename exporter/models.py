"""Typed models of the OnePin API responses, parsed as leniently as the official SDK reads them.

The public face of three modules, so that importers need not know how the work is divided:
`fieldreaders` reads one field leniently (numbers as strings, times in seconds or milliseconds,
open statuses) and records what it could not read; `apimodels` holds the frozen models;
`responsereaders` reads whole responses (pages, run status, runs summary, error bodies) into them.
"""

from exporter.apimodels import (
    LIST_ONLY_FIELDS,
    Fingerprint,
    Meta,
    Page,
    Pagination,
    Run,
    RunsSummary,
    Workflow,
)
from exporter.fieldreaders import (
    KNOWN_PAUSE_REASONS,
    KNOWN_STATUSES,
    MAX_INT,
    MAX_PROBLEMS,
    TERMINAL_STATUSES,
    UNKNOWN_STATUS,
    DecodeError,
    parse_time,
)
from exporter.responsereaders import (
    SUMMARY_STATUSES,
    parse_error_message,
    parse_meta,
    parse_pagination,
    parse_run,
    parse_run_page,
    parse_run_status,
    parse_runs_summary,
    parse_workflow,
    parse_workflow_definition,
    parse_workflow_page,
)

__all__ = [
    "KNOWN_PAUSE_REASONS",
    "KNOWN_STATUSES",
    "LIST_ONLY_FIELDS",
    "MAX_INT",
    "MAX_PROBLEMS",
    "SUMMARY_STATUSES",
    "TERMINAL_STATUSES",
    "UNKNOWN_STATUS",
    "DecodeError",
    "Fingerprint",
    "Meta",
    "Page",
    "Pagination",
    "Run",
    "RunsSummary",
    "Workflow",
    "parse_error_message",
    "parse_meta",
    "parse_pagination",
    "parse_run",
    "parse_run_page",
    "parse_run_status",
    "parse_runs_summary",
    "parse_time",
    "parse_workflow",
    "parse_workflow_definition",
    "parse_workflow_page",
]
