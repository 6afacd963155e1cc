"""The compose demo stack (docker-compose.yml): valid for Compose, its files exist, and its
parts point at each other (service names, ports, paths). Running it needs images from a
container registry, which these tests do not assume; test_container.py runs the exporter's image.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter.config import parse_config
from tests.helpers import require_binary
from tests.procs import REPO

COMPOSE_FILE = REPO / "docker-compose.yml"
COMPOSE_DIR = REPO / "deploy" / "compose"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return document


def _service(compose: dict[str, Any], name: str) -> dict[str, Any]:
    service: dict[str, Any] = compose["services"][name]
    return service


def _binds(service: dict[str, Any]) -> dict[str, str]:
    """container path -> host path (relative to the repository) of the bind mounts."""
    binds = {}
    for volume in service.get("volumes", []):
        source, target, *_ = volume.split(":")
        if source.startswith("./"):
            binds[target] = source.removeprefix("./")
    return binds


def _flag(args: list[str], name: str) -> str:
    values = [a.split("=", 1)[1] for a in args if a.startswith(f"{name}=")]
    assert len(values) == 1, f"{name} in {args}"
    return values[0]


def test_docker_compose_config_accepts_it() -> None:
    binary = require_binary("docker-compose")
    proc = subprocess.run(
        [binary, "--file", str(COMPOSE_FILE), "--project-directory", str(REPO), "config", "-q"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert proc.returncode == 0, f"docker-compose config:\n{proc.stdout}{proc.stderr}"
    assert "WARNING" not in proc.stderr, proc.stderr


def test_it_follows_the_compose_specification_schema() -> None:
    # check-jsonschema ships the Compose Specification's schema: no download needed.
    binary = require_binary("check-jsonschema")
    proc = subprocess.run(
        [binary, "--builtin-schema", "vendor.compose-spec", str(COMPOSE_FILE)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, f"check-jsonschema:\n{proc.stdout}{proc.stderr}"


def test_the_full_stack_is_there(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == {
        "simulator",
        "exporter",
        "prometheus",
        "alertmanager",
        "grafana",
    }
    for name, service in compose["services"].items():
        image = service["image"]
        assert ":" in image and not image.endswith(":latest"), f"{name}: pin the image ({image})"
        for target, source in _binds(service).items():
            assert (REPO / source).exists(), f"{name} mounts ./{source}, which does not exist"
            assert target.startswith("/"), target
    grafana = _service(compose, "grafana")["image"]
    assert re.fullmatch(r"grafana/grafana:11\.\d+\.\d+", grafana), grafana
    # Published ports are reachable from this machine only.
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} on every interface"


def test_simulator_and_exporter_run_the_locally_built_image(compose: dict[str, Any]) -> None:
    simulator = _service(compose, "simulator")
    exporter = _service(compose, "exporter")
    assert simulator["build"] == exporter["build"]
    assert exporter["build"]["context"] == "."
    # The image's label arguments (Dockerfile), from the environment, "unknown" when unset.
    assert set(exporter["build"]["args"]) == {"VERSION", "REVISION", "CREATED"}
    assert simulator["image"] == exporter["image"]
    assert simulator["entrypoint"] == ["onepin-simulator"]
    # The image's health check, pointed at the simulator's port.
    listen = _flag(simulator["command"], "--listen")
    health = urllib.parse.urlsplit(simulator["environment"]["ONEPIN_HEALTHCHECK_URL"])
    assert health.port == int(listen.rsplit(":", 1)[1])
    assert exporter["depends_on"]["simulator"]["condition"] == "service_healthy"
    assert (
        simulator["environment"]["ONEPIN_SIMULATOR_TOKEN"]
        == (exporter["environment"]["ONEPIN_API_TOKEN"])
    )


def test_exporter_config_is_valid_and_points_at_the_simulator(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    exporter = _service(compose, "exporter")
    config_path = _flag(exporter["command"], "--config.file")
    source = _binds(exporter)[config_path]
    assert source == "deploy/compose/exporter.yaml"
    monkeypatch.setenv("ONEPIN_API_TOKEN", exporter["environment"]["ONEPIN_API_TOKEN"])
    config = parse_config((REPO / source).read_text(), source)
    (workspace,) = config.workspaces
    api = urllib.parse.urlsplit(workspace.api_url)
    simulator_listen = _flag(_service(compose, "simulator")["command"], "--listen")
    assert (api.hostname, api.port) == ("simulator", int(simulator_listen.rsplit(":", 1)[1]))
    assert "9879:9879" in exporter["ports"][0]


def _prometheus_dir(compose: dict[str, Any], tmp_path: Path) -> Path:
    """The Prometheus container's /etc/prometheus, laid out from the compose bind mounts."""
    for target, source in _binds(_service(compose, "prometheus")).items():
        destination = tmp_path / target.lstrip("/")
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / source, destination)
    return tmp_path / "etc" / "prometheus"


def test_prometheus_config_is_valid_and_scrapes_the_exporter(
    compose: dict[str, Any], tmp_path: Path
) -> None:
    prometheus = _service(compose, "prometheus")
    config_path = _flag(prometheus["command"], "--config.file")
    etc = _prometheus_dir(compose, tmp_path)
    assert (tmp_path / config_path.lstrip("/")).is_file()
    config = yaml.safe_load((etc / "prometheus.yml").read_text())
    # The rule file is the repository's prometheus/alerts.yml, mounted beside the config.
    assert config["rule_files"] == ["alerts.yml"]
    assert _binds(prometheus)["/etc/prometheus/alerts.yml"] == "prometheus/alerts.yml"
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    onepin = [name for name in jobs if "onepin" in name]
    assert onepin == ["onepin"], "OnePinExporterDown selects job=~'.*onepin.*'"
    assert jobs["onepin"]["static_configs"] == [{"targets": ["exporter:9879"]}]
    (alertmanagers,) = config["alerting"]["alertmanagers"]
    assert alertmanagers["static_configs"] == [{"targets": ["alertmanager:9093"]}]
    promtool = require_binary("promtool")
    proc = subprocess.run(
        [promtool, "check", "config", str(etc / "prometheus.yml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, f"promtool check config:\n{proc.stdout}{proc.stderr}"


def test_alertmanager_config_is_valid(compose: dict[str, Any]) -> None:
    alertmanager = _service(compose, "alertmanager")
    config_path = _flag(alertmanager["command"], "--config.file")
    source = _binds(alertmanager)[config_path]
    amtool = require_binary("amtool")
    proc = subprocess.run(
        [amtool, "check-config", str(REPO / source)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, f"amtool check-config:\n{proc.stdout}{proc.stderr}"


def test_grafana_provisions_the_dashboards_and_the_compose_prometheus(
    compose: dict[str, Any],
) -> None:
    binds = _binds(_service(compose, "grafana"))
    assert binds["/etc/grafana/provisioning/dashboards"] == "grafana/provisioning/dashboards"
    # The dashboard provider reads the directory where the dashboards are mounted.
    providers = yaml.safe_load((REPO / "grafana/provisioning/dashboards/onepin.yml").read_text())
    (provider,) = providers["providers"]
    assert binds[provider["options"]["path"]] == "grafana/dashboards"
    assert list((REPO / "grafana/dashboards").glob("*.json")), "no dashboards to provision"
    datasource_files = [
        source for target, source in binds.items() if "/provisioning/datasources" in target
    ]
    assert datasource_files == ["deploy/compose/grafana-datasources.yml"]
    (datasource,) = yaml.safe_load((REPO / datasource_files[0]).read_text())["datasources"]
    assert datasource["url"] == "http://prometheus:9090"
    # Grafana's $__rate_interval assumes the data source's interval is the scrape interval.
    prometheus = yaml.safe_load((COMPOSE_DIR / "prometheus.yml").read_text())
    assert datasource["jsonData"]["timeInterval"] == prometheus["global"]["scrape_interval"]
