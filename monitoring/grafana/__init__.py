"""A small library of Grafana 11 panels, field options and layout, as plain JSON-ready dicts.

Written here rather than with grafana-foundation-sdk's typed builders (installable, and the
obvious candidate): its builders emit their own defaults and key set, so the generated JSON could
not be compared with the dashboards it replaced, and it would add a dependency versioned with
Grafana's schema for about 600 lines of plain functions that mypy checks as well.
"""
