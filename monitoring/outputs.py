"""The files this package generates, by path relative to the repository, and their text."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

from monitoring import links, rules_file
from monitoring.dashboards import exporter, workflows

DASHBOARD_DIR = Path("grafana/dashboards")
ALERTS = Path("prometheus/alerts.yml")
PROMETHEUS_RULE = Path("deploy/kubernetes/prometheusrule.yaml")

DASHBOARDS: dict[str, Callable[[], dict[str, Any]]] = {
    "onepin-workflows.json": workflows.build,
    "onepin-exporter.json": exporter.build,
}


@cache
def kubernetes_generator() -> ModuleType:
    """deploy/kubernetes/generate.py, a script beside the manifests, loaded by its path."""
    path = links.REPO / "deploy" / "kubernetes" / "generate.py"
    spec = importlib.util.spec_from_file_location("onepin_kubernetes_generate", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def dashboard_json(model: dict[str, Any]) -> str:
    return json.dumps(model, indent=2, ensure_ascii=False) + "\n"


def rendered() -> dict[Path, str]:
    """Relative path -> text of every generated file."""
    files = {DASHBOARD_DIR / name: dashboard_json(build()) for name, build in DASHBOARDS.items()}
    alerts = rules_file.render()
    files[ALERTS] = alerts
    files[PROMETHEUS_RULE] = kubernetes_generator().render(alerts)
    return files


def stale(root: Path) -> list[Path]:
    """The generated files under root that are missing or differ from what would be written."""
    return [
        path
        for path, text in rendered().items()
        if not (root / path).is_file() or (root / path).read_text(encoding="utf-8") != text
    ]


def write(root: Path) -> list[Path]:
    """Write every generated file under root; the paths written."""
    files = rendered()
    for path, text in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text, encoding="utf-8")
    return list(files)
