"""The configuration: its settings, how it is loaded and checked, and how it is summarised.

The public face of the modules that share the work, so that importers need not know how it is
divided: `settings` declares each key once (a field of the frozen settings, with how it is read,
documented and shown); `configload` reads the YAML into them, reporting every problem with its
key path and line (with `yamltree`, the YAML reader with line numbers, and `configvalues`, the
converters of single values); `configreport` makes the `--config.check` summary and README's
table of keys; `apitoken` holds the API token. The web configuration (--web.config.file) is
YAML too, read by exporter/webconfig.py.
"""

from exporter.apitoken import Token, TokenError, token_problem
from exporter.configload import load_config, parse_config
from exporter.configreport import describe, reference_table
from exporter.configvalues import parse_duration
from exporter.settings import (
    CollectionSettings,
    Config,
    Discovery,
    HttpSettings,
    MetricSelection,
    WorkflowRef,
    Workspace,
)
from exporter.yamltree import ConfigError

__all__ = [
    "CollectionSettings",
    "Config",
    "ConfigError",
    "Discovery",
    "HttpSettings",
    "MetricSelection",
    "Token",
    "TokenError",
    "WorkflowRef",
    "Workspace",
    "describe",
    "load_config",
    "parse_config",
    "parse_duration",
    "reference_table",
    "token_problem",
]
