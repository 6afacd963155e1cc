"""The Kubernetes manifests (deploy/kubernetes/): valid for Kubernetes (kubernetes-validate
--strict), the Prometheus Operator resources valid against a schema of their fields, the
PrometheusRule identical to prometheus/alerts.yml, and the parts consistent with each other and
with the image (ports, user, probes, sharding flags, config and secret paths).

The manifests are rendered with `kubectl kustomize` where kubectl exists; elsewhere with a small
renderer of the kustomization features they use (resources, configMapGenerator, namespace, images).
kubernetes-validate has no schemas for custom resources (ServiceMonitor, PrometheusRule): those
are checked with JSON schemas written here from the Prometheus Operator's API reference, covering
the fields these manifests use (unknown fields are errors, as with --strict).
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter.config import parse_config, parse_duration
from tests.helpers import require_binary
from tests.procs import REPO

K8S = REPO / "deploy" / "kubernetes"
ALERTS = REPO / "prometheus" / "alerts.yml"
CRD_KINDS = {"ServiceMonitor", "PrometheusRule"}
# The newest Kubernetes kubernetes-validate knows (its default), and an older one still common.
KUBERNETES_VERSIONS = [None, "1.29.0"]

Doc = dict[str, Any]


def _jsonschema() -> Any:
    try:
        jsonschema = importlib.import_module("jsonschema")
    except ImportError:
        if os.environ.get("CI") == "true":
            pytest.fail("jsonschema is required in CI (a dependency of the test extras)")
        pytest.skip("jsonschema not installed")
    return jsonschema


def _load_generator() -> Any:
    spec = importlib.util.spec_from_file_location("k8s_generate", K8S / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- rendering ---------------------------------------------------------------------------------


def _render_without_kubectl() -> list[Doc]:
    """What `kustomize build` makes of kustomization.yaml, for the features it uses."""
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    known = {"apiVersion", "kind", "namespace", "resources", "configMapGenerator", "images"}
    assert set(kustomization) <= known, f"renderer does not know {set(kustomization) - known}"
    docs: list[Doc] = []
    for generator in kustomization.get("configMapGenerator", []):
        data = {Path(f).name: (K8S / f).read_text() for f in generator["files"]}
        docs.append(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": generator["name"]},
                "data": data,
            }
        )
    for resource in kustomization["resources"]:
        docs += [d for d in yaml.safe_load_all((K8S / resource).read_text()) if d]
    images = {i["name"]: i for i in kustomization.get("images", [])}
    for doc in docs:
        doc["metadata"]["namespace"] = kustomization["namespace"]
        for container in _containers(doc):
            name, _, _tag = container["image"].partition(":")
            if name in images:
                new = images[name]
                container["image"] = f"{new.get('newName', name)}:{new['newTag']}"
    return docs


@pytest.fixture(scope="module")
def rendered() -> list[Doc]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        return _render_without_kubectl()
    proc = subprocess.run(
        [kubectl, "kustomize", str(K8S)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, f"kubectl kustomize failed:\n{proc.stderr}"
    return [d for d in yaml.safe_load_all(proc.stdout) if d]


def test_fallback_renderer_agrees_with_kubectl(rendered: list[Doc]) -> None:
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl not installed: the fallback renderer is in use")

    def key(doc: Doc) -> tuple[str, str]:
        name = doc["metadata"]["name"]
        if doc["kind"] == "ConfigMap":
            name = re.sub(r"-[a-z0-9]{10}$", "", name)  # kustomize's content hash
        return doc["kind"], name

    def normal(doc: Doc) -> Doc:
        doc = yaml.safe_load(yaml.safe_dump(doc))
        doc["metadata"]["name"] = key(doc)[1]
        for volume in doc.get("spec", {}).get("template", {}).get("spec", {}).get("volumes", []):
            if "configMap" in volume:
                volume["configMap"]["name"] = re.sub(
                    r"-[a-z0-9]{10}$", "", volume["configMap"]["name"]
                )
        return doc

    ours = {key(d): normal(d) for d in _render_without_kubectl()}
    theirs = {key(d): normal(d) for d in rendered}
    assert ours == theirs


def _containers(doc: Doc) -> list[Doc]:
    if doc["kind"] not in {"StatefulSet", "Deployment", "DaemonSet"}:
        return []
    containers: list[Doc] = doc["spec"]["template"]["spec"]["containers"]
    return containers


def _one(docs: list[Doc], kind: str, name: str | None = None) -> Doc:
    found = [d for d in docs if d["kind"] == kind and name in (None, d["metadata"]["name"])]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


@pytest.fixture(scope="module")
def statefulset(rendered: list[Doc]) -> Doc:
    return _one(rendered, "StatefulSet")


@pytest.fixture(scope="module")
def container(statefulset: Doc) -> Doc:
    (exporter,) = statefulset["spec"]["template"]["spec"]["containers"]
    result: Doc = exporter
    return result


# --- validation --------------------------------------------------------------------------------


def _write(docs: list[Doc], path: Path) -> Path:
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return path


def _kubernetes_validate(path: Path, version: str | None) -> subprocess.CompletedProcess[str]:
    args = [require_binary("kubernetes-validate"), "--strict"]
    if version:
        args += ["--kubernetes-version", version]
    return subprocess.run([*args, str(path)], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS, ids=lambda v: v or "latest")
def test_manifests_pass_kubernetes_validate_strict(
    rendered: list[Doc], tmp_path: Path, version: str | None
) -> None:
    proc = _kubernetes_validate(_write(rendered, tmp_path / "all.yaml"), version)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"kubernetes-validate --strict:\n{output}"
    passed = set(re.findall(r"passed for resource (\w+)/", output))
    built_in = {d["kind"].lower() for d in rendered if d["kind"] not in CRD_KINDS}
    assert passed == built_in, f"not validated: {built_in - passed}\n{output}"
    # Only the Prometheus Operator's kinds may lack a schema (checked below instead).
    for kind in re.findall(r"Couldn't find schema for kind (\w+)", output):
        assert kind in CRD_KINDS, output


def test_kubernetes_validate_strict_rejects_unknown_fields(
    statefulset: Doc, tmp_path: Path
) -> None:
    # The validator itself is checked: a misspelt field must fail, or the test above means little.
    broken = yaml.safe_load(yaml.safe_dump(statefulset))
    broken["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    proc = _kubernetes_validate(_write([broken], tmp_path / "broken.yaml"), None)
    assert proc.returncode != 0, proc.stdout


DURATION = r"^(0|([0-9]+(ms|s|m|h|d|w|y))+)$"
STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
LABEL_SELECTOR = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "matchLabels": STRING_MAP,
        "matchExpressions": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["key", "operator"],
                "additionalProperties": False,
                "properties": {
                    "key": {"type": "string"},
                    "operator": {"enum": ["In", "NotIn", "Exists", "DoesNotExist"]},
                    "values": {"type": "array", "items": {"type": "string"}},
                },
            },
        },
    },
}
METADATA = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},
        "namespace": {"type": "string"},
        "labels": STRING_MAP,
        "annotations": STRING_MAP,
    },
}
RELABELINGS = {"type": "array", "items": {"type": "object"}}
SERVICE_MONITOR_SCHEMA = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "ServiceMonitor"},
        "metadata": METADATA,
        "spec": {
            "type": "object",
            "required": ["selector", "endpoints"],
            "additionalProperties": False,
            "properties": {
                "selector": LABEL_SELECTOR,
                "namespaceSelector": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "any": {"type": "boolean"},
                        "matchNames": {"type": "array", "items": {"type": "string"}},
                    },
                },
                "jobLabel": {"type": "string"},
                "targetLabels": {"type": "array", "items": {"type": "string"}},
                "podTargetLabels": {"type": "array", "items": {"type": "string"}},
                "sampleLimit": {"type": "integer", "minimum": 0},
                "endpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "port": {"type": "string"},
                            "targetPort": {"type": ["string", "integer"]},
                            "path": {"type": "string", "pattern": "^/"},
                            "scheme": {"enum": ["http", "https"]},
                            "params": {"type": "object"},
                            "interval": {"type": "string", "pattern": DURATION},
                            "scrapeTimeout": {"type": "string", "pattern": DURATION},
                            "honorLabels": {"type": "boolean"},
                            "honorTimestamps": {"type": "boolean"},
                            "relabelings": RELABELINGS,
                            "metricRelabelings": RELABELINGS,
                            "tlsConfig": {"type": "object"},
                            "basicAuth": {"type": "object"},
                            "authorization": {"type": "object"},
                            "followRedirects": {"type": "boolean"},
                        },
                    },
                },
            },
        },
    },
}
RULE = {
    "type": "object",
    "required": ["expr"],
    "additionalProperties": False,
    "oneOf": [{"required": ["alert"]}, {"required": ["record"]}],
    "properties": {
        "alert": {"type": "string", "minLength": 1},
        "record": {"type": "string", "minLength": 1},
        "expr": {"type": ["string", "integer"]},
        "for": {"type": "string", "pattern": DURATION},
        "keep_firing_for": {"type": "string", "pattern": DURATION},
        "labels": STRING_MAP,
        "annotations": STRING_MAP,
    },
}
PROMETHEUS_RULE_SCHEMA = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "PrometheusRule"},
        "metadata": METADATA,
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "groups": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["name", "rules"],
                        "additionalProperties": False,
                        "properties": {
                            "name": {"type": "string", "minLength": 1},
                            "interval": {"type": "string", "pattern": DURATION},
                            "query_offset": {"type": "string", "pattern": DURATION},
                            "limit": {"type": "integer", "minimum": 0},
                            "partial_response_strategy": {"enum": ["", "warn", "abort"]},
                            "labels": STRING_MAP,
                            "rules": {"type": "array", "items": RULE},
                        },
                    },
                }
            },
        },
    },
}


@pytest.mark.parametrize(
    ("kind", "schema"),
    [("ServiceMonitor", SERVICE_MONITOR_SCHEMA), ("PrometheusRule", PROMETHEUS_RULE_SCHEMA)],
)
def test_prometheus_operator_resources_match_their_schema(
    rendered: list[Doc], kind: str, schema: Doc
) -> None:
    jsonschema = _jsonschema()
    errors = sorted(
        jsonschema.Draft202012Validator(schema).iter_errors(_one(rendered, kind)),
        key=lambda e: list(e.absolute_path),
    )
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)


def test_crd_schemas_reject_mistakes() -> None:
    jsonschema = _jsonschema()
    bad_monitor = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {"name": "x"},
        "spec": {"selector": {}, "endpoints": [{"port": "http", "intervall": "30s"}]},
    }
    assert list(jsonschema.Draft202012Validator(SERVICE_MONITOR_SCHEMA).iter_errors(bad_monitor))
    bad_rule = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "x"},
        "spec": {"groups": [{"name": "g", "rules": [{"alert": "A", "expr": "1", "for": "5 m"}]}]},
    }
    assert list(jsonschema.Draft202012Validator(PROMETHEUS_RULE_SCHEMA).iter_errors(bad_rule))


# --- the PrometheusRule is prometheus/alerts.yml -----------------------------------------------


def test_prometheusrule_groups_are_identical_to_alerts_yml(rendered: list[Doc]) -> None:
    rule = _one(rendered, "PrometheusRule")
    assert rule["spec"]["groups"] == yaml.safe_load(ALERTS.read_text())["groups"]


def test_committed_prometheusrule_is_what_generate_py_writes() -> None:
    generator = _load_generator()
    expected = generator.render(ALERTS.read_text())
    assert (K8S / "prometheusrule.yaml").read_text() == expected, (
        "deploy/kubernetes/prometheusrule.yaml is out of date: "
        "run python deploy/kubernetes/generate.py"
    )


# --- the parts agree with each other and with the image ----------------------------------------


def _dockerfile(instruction: str) -> str:
    lines = [
        line.split(None, 1)[1]
        for line in (REPO / "Dockerfile").read_text().splitlines()
        if line.startswith(f"{instruction} ")
    ]
    assert len(lines) == 1, f"{instruction} in Dockerfile"
    return lines[0].strip()


def test_statefulset_runs_one_shard_per_pod(statefulset: Doc, container: Doc) -> None:
    args = container["args"]
    assert "--shard=auto" in args, "the ordinal comes from the pod's hostname"
    assert "--total-shards=$(TOTAL_SHARDS)" in args
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["TOTAL_SHARDS"] == str(statefulset["spec"]["replicas"]), (
        "TOTAL_SHARDS must equal spec.replicas (every shard's workflows exported exactly once)"
    )
    assert statefulset["spec"]["podManagementPolicy"] == "Parallel"


def test_statefulset_is_locked_down(statefulset: Doc, container: Doc) -> None:
    pod = statefulset["spec"]["template"]["spec"]
    uid, _, gid = _dockerfile("USER").partition(":")
    assert pod["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": int(uid),
        "runAsGroup": int(gid),
        "fsGroup": int(gid),
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert pod["automountServiceAccountToken"] is False
    resources = container["resources"]
    assert resources["requests"]["cpu"] and resources["requests"]["memory"]
    assert resources["limits"]["memory"]


def test_probes_and_port_match_the_image(container: Doc) -> None:
    (port,) = container["ports"]
    assert port["containerPort"] == int(_dockerfile("EXPOSE"))
    assert container["livenessProbe"]["httpGet"] == {"path": "/-/healthy", "port": port["name"]}
    assert container["readinessProbe"]["httpGet"] == {"path": "/-/ready", "port": port["name"]}


def test_config_and_token_come_from_the_configmap_and_the_secret(
    rendered: list[Doc], statefulset: Doc, container: Doc, tmp_path: Path
) -> None:
    volumes = {v["name"]: v for v in statefulset["spec"]["template"]["spec"]["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    config_file = next(a for a in container["args"] if a.startswith("--config.file="))
    config_path = Path(config_file.split("=", 1)[1])
    config_volume = volumes[mounts[str(config_path.parent)]]
    configmap = _one(rendered, "ConfigMap", config_volume["configMap"]["name"])
    text = configmap["data"][config_path.name]
    # The token file lives in the Secret's mount (a directory mount: rotations reach the pod).
    token_file = Path(yaml.safe_load(text)["workspaces"][0]["token_file"])
    token_volume = volumes[mounts[str(token_file.parent)]]
    assert token_volume["secret"]["secretName"] == "onepin-exporter-token"
    assert [i["path"] for i in token_volume["secret"]["items"]] == [token_file.name]
    assert not any("subPath" in m for m in container["volumeMounts"])
    # And the configuration is one the exporter accepts.
    (tmp_path / "token").write_text("op_live_test\n")
    config = parse_config(text.replace(str(token_file), str(tmp_path / "token")), "config.yaml")
    assert config.workspaces[0].api_url.startswith("https://")
    # HA: two Prometheus replicas cost one poll per scrape interval, whatever their phase, when
    # a scrape within min_interval of the last poll reuses it and min_interval > interval / 2.
    (endpoint,) = _one(rendered, "ServiceMonitor")["spec"]["endpoints"]
    interval = parse_duration(endpoint["interval"])
    assert interval / 2 < config.collection.min_interval < interval
    # The poll deadline: the scrape timeout (minus a margin), capped by max_duration.
    assert parse_duration(endpoint["scrapeTimeout"]) <= config.collection.max_duration


def test_servicemonitor_scrapes_each_shard_once(rendered: list[Doc], statefulset: Doc) -> None:
    monitor = _one(rendered, "ServiceMonitor")
    selector = monitor["spec"]["selector"]["matchLabels"]
    services = [d for d in rendered if d["kind"] == "Service"]
    selected = [s for s in services if selector.items() <= s["metadata"].get("labels", {}).items()]
    assert [s["metadata"]["name"] for s in selected] == [statefulset["spec"]["serviceName"]]
    (headless,) = selected
    assert headless["spec"]["clusterIP"] == "None"
    assert "onepin" in headless["metadata"]["name"], "job label must match job=~'.*onepin.*'"
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in headless["spec"]["ports"]}
    pod_labels = statefulset["spec"]["template"]["metadata"]["labels"]
    for service in services:
        assert service["spec"]["selector"].items() <= pod_labels.items()


def test_networkpolicy_admits_prometheus_only_and_lets_out_dns_and_https(
    rendered: list[Doc], statefulset: Doc, container: Doc
) -> None:
    policy = _one(rendered, "NetworkPolicy")["spec"]
    pod_labels = statefulset["spec"]["template"]["metadata"]["labels"]
    assert policy["podSelector"]["matchLabels"].items() <= pod_labels.items()
    assert sorted(policy["policyTypes"]) == ["Egress", "Ingress"]
    (ingress,) = policy["ingress"]
    assert ingress["ports"] == [{"protocol": "TCP", "port": container["ports"][0]["containerPort"]}]
    assert all("prometheus" in str(peer["podSelector"]) for peer in ingress["from"])
    egress_ports = {(p["protocol"], p["port"]) for rule in policy["egress"] for p in rule["ports"]}
    assert egress_ports == {("UDP", 53), ("TCP", 53), ("TCP", 443)}
