"""Commands in the docs match what they act on.

The kubectl commands in the README, docs/ and the manifests' comments name what the manifests
make: the namespace `monitoring`, the StatefulSet `onepin-exporter` (not a Deployment), its pods
and Service, and labels its pods carry (the runbook once said `kubectl logs
deploy/onepin-exporter`, which finds nothing). The README names every package the test command
installs (it once named two of six).
"""

from __future__ import annotations

import re
import shlex
from typing import Any

import yaml

from tests.procs import REPO

MANIFESTS = REPO / "deploy" / "kubernetes"
KINDS = {"deploy": "Deployment", "deployment": "Deployment", "statefulset": "StatefulSet",
         "sts": "StatefulSet", "svc": "Service", "service": "Service", "pod": "Pod"}  # fmt: skip
# Subcommands that act on resources in a namespace (apply -k sets it from the kustomization).
NAMESPACED = {"logs", "rollout", "port-forward", "exec", "describe", "get", "delete", "create"}


def _documents() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted(MANIFESTS.glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d and "metadata" in d]
    return docs


def _namespace() -> str:
    kustomization = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())
    return str(kustomization["namespace"])


def kubectl_commands() -> list[tuple[str, str]]:
    """(file, command) for every kubectl command in backticks, code blocks or comments."""
    found = []
    files = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")),
             *sorted(MANIFESTS.glob("*.yaml"))]  # fmt: skip
    for path in files:
        text = re.sub(r"\\\n\s*", " ", path.read_text())
        text = re.sub(r"`\n", "` ", text)  # inline code broken across lines in Markdown
        for match in re.finditer(r"(?:`|^\s*#?\s*)(kubectl [^`\n|]+)", text, re.M):
            command = match.group(1).split(" #")[0].strip()
            found.append((path.name, command))
    return found


def command_problems(commands: list[tuple[str, str]]) -> list[str]:
    docs = _documents()
    names = {(d["kind"], d["metadata"]["name"]) for d in docs}
    statefulsets = [d for d in docs if d["kind"] == "StatefulSet"]
    for kind, name in list(names):
        if kind == "StatefulSet":
            replicas = next(d for d in statefulsets if d["metadata"]["name"] == name)["spec"]
            names |= {("Pod", f"{name}-{i}") for i in range(replicas["replicas"])}
    pod_labels = [d["spec"]["template"]["metadata"]["labels"] for d in statefulsets]
    problems = []
    for where, command in commands:
        args = shlex.split(command)[1:]
        verb = next((a for a in args if not a.startswith("-") and a != _namespace()), "")
        namespace = None
        for i, arg in enumerate(args):
            if arg in ("-n", "--namespace") and i + 1 < len(args):
                namespace = args[i + 1]
            elif arg.startswith("--namespace="):
                namespace = arg.split("=", 1)[1]
        creates_namespace = args[:2] == ["create", "namespace"]
        needs_namespace = verb in NAMESPACED and not creates_namespace and "--local" not in args
        if "configmap" in args:  # made from local files, applied wherever the reader wants
            needs_namespace = False
        if needs_namespace and namespace != _namespace():
            problems.append(f"{where}: `{command}` does not say -n {_namespace()}")
        for arg in args if verb != "apply" else ():  # apply -k/-f takes paths, not resources
            ref = re.fullmatch(r"([a-z-]+)/([a-z0-9-]+)", arg)
            if ref and ref.group(1) in KINDS and (KINDS[ref.group(1)], ref.group(2)) not in names:
                problems.append(f"{where}: `{command}`: no {KINDS[ref.group(1)]} {ref.group(2)}")
        if verb == "logs":
            targets = [a for a in args[args.index("logs") + 1 :] if not a.startswith("-")]
            targets = [t for t in targets if t != namespace]
            selector = next((args[i + 1] for i, a in enumerate(args) if a in ("-l", "--selector")),
                            None)  # fmt: skip
            if selector is not None:
                wanted = dict(part.split("=", 1) for part in selector.split(","))
                if not any(wanted.items() <= labels.items() for labels in pod_labels):
                    problems.append(f"{where}: `{command}`: no pods labelled {selector}")
            else:
                for target in targets:
                    if "/" not in target and ("Pod", target) not in names:
                        problems.append(f"{where}: `{command}`: no pod {target}")
    return problems


def test_kubectl_commands_name_what_the_manifests_make() -> None:
    commands = kubectl_commands()
    assert len(commands) >= 8, commands
    problems = command_problems(commands)
    assert not problems, "\n".join(problems)


def test_the_runbook_command_of_issue_12_is_caught() -> None:
    old = [("runbook.md", "kubectl logs deploy/onepin-exporter --since=1h"),
           ("service.yaml", "kubectl port-forward svc/onepin-exporter 9879"),
           ("x.md", "kubectl -n monitoring logs -l app=onepin-exporter")]  # fmt: skip
    assert command_problems(old) == [
        "runbook.md: `kubectl logs deploy/onepin-exporter --since=1h` does not say -n monitoring",
        "runbook.md: `kubectl logs deploy/onepin-exporter --since=1h`: no Deployment "
        "onepin-exporter",
        "service.yaml: `kubectl port-forward svc/onepin-exporter 9879` does not say -n monitoring",
        "x.md: `kubectl -n monitoring logs -l app=onepin-exporter`: no pods labelled "
        "app=onepin-exporter",
    ]


def test_the_readme_lists_every_package_the_test_command_installs() -> None:
    script = (REPO / "scripts" / "test.sh").read_text()
    packages = re.findall(r"need_apt\+=\(([\w-]+)\)", script)
    assert len(packages) >= 7, packages
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Run the tests", 1)[1].split("\n## ", 1)[0]
    missing = [p for p in packages if f"`{p}`" not in section]
    assert not missing, f"README's 'Run the tests' does not name {missing}"


# --- paths, the systemd unit and the compose stack ----------------------------------------------

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
# A repository path the docs name (`deploy/compose/exporter.yaml`, `../prometheus/alerts.yml`,
# `grafana/dashboards/*.json`); not inside an absolute path or a URL, not an image (`grafana/x:1`).
REPO_PATH = re.compile(
    r"(?<![\w/.:-])(?:\.\./)?((?:bench|deploy|docs|exporter|grafana|prometheus|scripts|tests)"
    r"/[\w./*-]++)(?!:\d)"
)
SYSTEMD_UNIT = re.compile(
    r"\b(?:systemctl (?:[a-z-]+ )+?(?:--[a-z-]+ )*|journalctl -u |systemd-analyze security )"
    r"([\w@.-]+)"
)


def missing_paths(text: str) -> list[str]:
    """The repository paths `text` names that match no file or directory."""
    paths = [m.group(1).rstrip(".-") for m in REPO_PATH.finditer(text)]
    return [path for path in paths if not list(REPO.glob(path))]


def test_every_path_the_docs_name_exists() -> None:
    missing = {doc.name: missing_paths(doc.read_text()) for doc in DOCS}
    assert not any(missing.values()), missing


def test_a_stale_path_is_caught() -> None:
    text = (
        "Run `python grafana/make.py`, see [rules](../prometheus/alerts.yml), "
        "install /opt/onepin-exporter/bin/pip, image grafana/grafana:11.6.0."
    )
    assert missing_paths(text) == ["grafana/make.py"]


def test_systemd_commands_name_the_shipped_unit() -> None:
    units = {path.stem for path in (REPO / "deploy" / "systemd").glob("*.service")}
    named = [
        (doc.name, m.group(1).removesuffix(".service"))
        for doc in DOCS
        for m in SYSTEMD_UNIT.finditer(doc.read_text())
        if m.group(1) != "daemon-reload"
    ]
    assert len(named) >= 5, named
    assert [(doc, unit) for doc, unit in named if unit not in units] == []


def test_every_compose_up_builds_the_stack() -> None:
    """The stack runs images built from the checkout (`onepin-exporter:local`): `up` without
    `--build` runs a stale image, or fails to pull one. README, deploy.md and the compose file
    say the same command."""
    files = [*DOCS, REPO / "docker-compose.yml"]
    ups = [
        (path.name, m.group(0))
        for path in files
        for m in re.finditer(r"\b(?:docker compose|docker-compose|podman-compose) up\b[^`#\n]*",
                             path.read_text())
    ]  # fmt: skip
    assert {name for name, _ in ups} >= {"README.md", "deploy.md", "docker-compose.yml"}, ups
    assert [(name, up) for name, up in ups if "--build" not in up] == []
