"""Production starts: every process builds its settings (and what it builds from them at start-up)
from the environment the production overlay gives it.

For each container of the rendered production overlay, the test resolves the environment as the
kubelet would: the ConfigMap (envFrom), then each ``env`` entry in order with ``$(VAR)``
expansion, Secret references filled from ``k8s/examples/secrets.example.yaml`` (each placeholder
replaced by a strong random value, as an operator or a person would), the downward API with
sample values, and Secret volumes written to a temporary directory (a real JWKS for the gateway).
Then, in a fresh interpreter with only that environment, it runs the process's own start-up code
(the API's app factory; a worker's bootstrap and worker parts; the migration's settings) without
touching the network. Negative controls show the check has teeth.
"""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import K8S, PENDING_MODULES, REPO
from .test_manifests import containers, pod_labels, pod_spec, selector_matches, workloads

SAMPLE_FIELDS = {"metadata.name": "pod-0", "metadata.namespace": "sqi", "spec.nodeName": "node-0"}

# The start-up code a container's command runs, up to (not including) its first network call.
# It prints the HTTP paths the process serves (its app's, or the worker's probe server's).
STARTUP = r"""
import importlib, json, sys
command = sys.argv[1:]
routes = []
if command[0] == "uvicorn":
    module, _, factory = command[1].partition(":")
    app = getattr(importlib.import_module(module), factory)()
    routes = [r.path for r in app.routes if hasattr(r, "path")]
elif command[:2] == ["python", "-m"] and command[2].endswith(".worker"):
    service = command[2].removesuffix(".worker")
    importlib.import_module(command[2])
    boot = importlib.import_module(service + ".bootstrap")
    app = boot.bootstrap()
    if hasattr(boot, "worker_parts"):
        boot.worker_parts(app)
    from shared.web import create_app  # what shared.worker.serve_probes serves
    routes = [r.path for r in create_app("worker", title="probes", checks={}).routes if hasattr(r, "path")]
elif command[2:] == ["sqi_cli", "migrate"]:
    from shared.settings import CommonSettings
    s = CommonSettings()
    assert s.environment == "production" and s.asyncpg_dsn and s.amqp_url and s.migrate_role_prefix
else:
    raise SystemExit(f"unknown process {command}")
print("started " + json.dumps(sorted(routes)))
"""


def example_secrets() -> dict[str, dict[str, str]]:
    docs = yaml.safe_load_all((K8S / "examples" / "secrets.example.yaml").read_text())
    filled: dict[str, dict[str, str]] = {}
    for d in docs:
        data = {}
        for key, value in d["stringData"].items():
            if key == "rating-code-keys":
                value = f"1:{secrets.token_urlsafe(32)}"
            elif "REPLACE_ME" in value and not key.endswith(".json"):
                value = secrets.token_urlsafe(36) + "/+@:"  # characters a URL must escape
            data[key] = value
        filled[d["metadata"]["name"]] = data
    return filled


def real_jwks() -> str:
    from cryptography.hazmat.primitives.asymmetric import rsa
    from jwt.algorithms import RSAAlgorithm

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return json.dumps({"keys": [json.loads(RSAAlgorithm.to_jwk(key.public_key()))]})


def container_env(
    workload: dict[str, Any], container: dict[str, Any], docs: list[dict], secret_values: dict, tmp: Path
) -> dict[str, str]:
    configmaps = {d["metadata"]["name"]: d.get("data", {}) for d in docs if d["kind"] == "ConfigMap"}
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env.update(configmaps[source["configMapRef"]["name"]])
    for entry in container.get("env", []):
        if "value" in entry:
            value = re.sub(r"\$\((\w+)\)", lambda m: env.get(m.group(1), m.group(0)), entry["value"])
        elif "secretKeyRef" in entry["valueFrom"]:
            ref = entry["valueFrom"]["secretKeyRef"]
            value = secret_values[ref["name"]][ref["key"]]
        else:
            value = SAMPLE_FIELDS[entry["valueFrom"]["fieldRef"]["fieldPath"]]
        env[entry["name"]] = value
    # Secret volumes: their files in a temporary directory, paths in the env pointed there.
    volumes = {v["name"]: v for v in pod_spec(workload).get("volumes", [])}
    for mount in container.get("volumeMounts", []):
        secret = volumes[mount["name"]].get("secret")
        if not secret:
            continue
        where = tmp / workload["metadata"]["name"] / mount["name"]
        where.mkdir(parents=True)
        for key, value in secret_values[secret["secretName"]].items():
            (where / key).write_text(real_jwks() if key.endswith("jwks.json") else value)
        for name, value in env.items():
            if value.startswith(mount["mountPath"]):
                env[name] = str(where) + value[len(mount["mountPath"]) :]
    return env


def start(command: list[str], env: dict[str, str], home: Path = Path.home()) -> subprocess.CompletedProcess[str]:
    return run_in(env, STARTUP, *command, home=home)


def run_in(env: dict[str, str], script: str, *args: str, home: Path = Path.home()) -> subprocess.CompletedProcess[str]:
    """Run the Python ``script`` in a process with ``env`` alone (a pod's rendered environment)."""
    return subprocess.run(
        [sys.executable, "-c", script, *args],
        cwd=REPO,
        env={**env, "PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def production_processes(rendered, tmp_path_factory) -> list[tuple[str, list[str], dict[str, str]]]:
    docs = rendered["production"]
    secret_values = example_secrets()
    tmp = tmp_path_factory.mktemp("production-env")
    processes = []
    for w in workloads(docs):
        for c in containers(w):
            if any(part in PENDING_MODULES for part in c["command"]):
                continue  # its module is not in this branch yet (conftest.PENDING_MODULES)
            processes.append((w["metadata"]["name"], c["command"], container_env(w, c, docs, secret_values, tmp)))
    return processes


@pytest.fixture(scope="module")
def started(production_processes) -> dict[str, subprocess.CompletedProcess[str]]:
    return {name: start(command, env) for name, command, env in production_processes}


def served_paths(result: subprocess.CompletedProcess[str]) -> set[str]:
    line = next(line for line in result.stdout.splitlines() if line.startswith("started "))
    return set(json.loads(line.removeprefix("started ")))


def test_every_production_process_starts_with_the_documented_secrets(production_processes, started):
    failures = []
    for name, command, env in production_processes:
        assert env["SQI_ENVIRONMENT"] == "production", name
        result = started[name]
        if result.returncode != 0 or "started" not in result.stdout:
            failures.append(f"{name} ({' '.join(command)}):\n{result.stderr[-1500:]}")
    assert not failures, "\n\n".join(failures)


def test_probe_and_scrape_paths_and_ports_match_the_app(rendered, production_processes, started):
    """What the kubelet probes and Prometheus scrapes is what each process serves, on its port."""
    docs = rendered["production"]
    deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    envs = {name: env for name, _, env in production_processes}
    monitors = [m for m in docs if m["kind"] == "PodMonitor"]
    for name, d in deployments.items():
        c = pod_spec(d)["containers"][0]
        if name not in started:
            continue  # pending module, see conftest.PENDING_MODULES
        paths = served_paths(started[name])
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        command = c["command"]
        listens = (
            int(command[command.index("--port") + 1])
            if "--port" in command
            else int(envs[name]["SQI_WORKER_HTTP_PORT"])
        )
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            http = c[probe]["httpGet"]
            assert http["path"] in paths, f"{name} {probe}: {http['path']} not served ({sorted(paths)[:8]}…)"
            assert ports.get(http["port"], http["port"]) == listens, f"{name} {probe}: port {http['port']}"
        scraped = [
            e
            for m in monitors
            if selector_matches(m["spec"]["selector"], pod_labels(d))
            for e in m["spec"]["podMetricsEndpoints"]
        ]
        assert len(scraped) == 1, f"{name} is scraped by {len(scraped)} PodMonitor endpoints"
        assert scraped[0]["path"] in paths and ports[scraped[0]["port"]] == listens, name


def test_a_missing_secret_stops_the_process_at_start(production_processes):
    """Negative control: without its internal token an API refuses to start, naming the variable."""
    _, command, env = next(p for p in production_processes if p[0] == "ingest-api")
    result = start(command, {k: v for k, v in env.items() if k != "SQI_INTERNAL_TOKEN"})
    assert result.returncode != 0
    assert "SQI_INTERNAL_TOKEN" in result.stderr, result.stderr[-1500:]


def test_feedback_gets_its_contact_key(production_processes):
    for name, _, env in production_processes:
        if name.startswith("feedback-"):
            assert env.get("SQI_FEEDBACK_CONTACT_KEY"), name
