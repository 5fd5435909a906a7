"""The manifests and the code agree: processes, database roles and schemas, metrics, alerts, runbook.

- every process in the code (``services/*/worker.py``, ``services/*/api/app.py``, the gateway)
  has its workload, running that module;
- each service's database role owns exactly its own schema, and each workload connects as its
  service's role (``roles.sql`` + the Cluster's managed roles + the workloads' URLs);
- every metric an alert or the dashboard uses is in the ``shared.metrics`` catalogue, and the ones
  shared.messaging observes are those the running-worker test reads from ``/metrics``;
- every alert has its runbook entry; the worker's shutdown grace fits in the pod's.
"""

from __future__ import annotations

import json
import re
from importlib.util import find_spec
from pathlib import Path

from prometheus_client import generate_latest
from prometheus_client.metrics import MetricWrapperBase

import shared.metrics
from sqi_cli.migrate import migration_dirs
from sqi_cli.platform import GATEWAY_KEEP_ALIVE_S, Platform

from .conftest import K8S, PENDING_MODULES, REPO
from .test_manifests import by_name, of_kind, pod_spec, workloads

PROD = K8S / "overlays" / "production"
# Prometheus' own series, not SQI's.
PROMETHEUS_BUILTINS = {"up", "scrape_duration_seconds"}
METRIC = re.compile(r"\b(sqi_[a-z0-9_]+|up)\b")


def code_processes() -> dict[str, list[str]]:
    """Deployment name -> command, for every process the code contains."""
    processes = {"gateway": ["uvicorn", "gateway.app:create_app"]}
    for app in sorted((REPO / "services").glob("*/api/app.py")):
        svc = app.parts[-3]
        processes[f"{svc}-api"] = ["uvicorn", f"services.{svc}.api.app:create_app"]
    for worker in sorted((REPO / "services").glob("*/worker.py")):
        svc = worker.parts[-2]
        processes[f"{svc}-worker"] = ["python", "-m", f"services.{svc}.worker"]
    return processes


def test_pending_modules_are_really_pending():
    for module, builder in PENDING_MODULES.items():
        assert find_spec(module) is None, f"{module} exists now ({builder}): remove it from PENDING_MODULES"


def test_every_process_in_the_code_has_its_workload(overlay):
    _, docs = overlay
    deployments = by_name(docs, "Deployment")
    for name, command in code_processes().items():
        assert name in deployments, f"no Deployment runs {' '.join(command)}"
        actual = pod_spec(deployments[name])["containers"][0]["command"]
        assert actual[: len(command)] == command, f"{name} runs {actual}"


# ---------------------------------------------------------------------------- roles and schemas


def schemas_in_code() -> set[str]:
    """Each service with migrations has one schema, named after it (gateway/, services/<svc>/)."""
    return {d.parent.name for d in migration_dirs()}


def owned_schemas() -> dict[str, str]:
    sql = (PROD / "data" / "roles.sql").read_text()
    return dict(re.findall(r"CREATE SCHEMA (\w+) AUTHORIZATION (\w+);", sql))


def test_each_service_role_owns_exactly_its_schema():
    owners = owned_schemas()
    assert schemas_in_code() <= set(owners), f"schemas without a role: {schemas_in_code() - set(owners)}"
    for schema, role in owners.items():
        assert role == f"sqi_{schema}", f"schema {schema} owned by {role}"
    assert len(set(owners.values())) == len(owners), "a role owns more than one schema"
    sql = (PROD / "data" / "roles.sql").read_text()
    # No role is granted anything on another schema (only database CONNECT and role memberships).
    grants = re.findall(r"^GRANT (.+?) ON (\w+) (\w+) TO (\w+);", sql, re.M)
    assert all(kind == "DATABASE" for _, kind, _, _ in grants), grants


def test_the_cluster_manages_every_service_role_and_workloads_connect_as_their_own(rendered):
    docs = rendered["production"]
    (cluster,) = of_kind(docs, "Cluster")
    managed = {r["name"]: r for r in cluster["spec"]["managed"]["roles"]}
    owners = owned_schemas()
    assert set(managed) == set(owners.values())
    for role in managed.values():
        assert role["login"] and role["passwordSecret"]["name"] == "sqi-pg-" + role["name"].removeprefix("sqi_")
    assert cluster["spec"]["bootstrap"]["initdb"]["owner"] == "sqi_owner"
    for w in workloads(docs):
        name = w["metadata"]["name"]
        env = {e["name"]: e for e in pod_spec(w)["containers"][0]["env"]}
        user = re.match(r"postgresql\+asyncpg://(\w+)@", env["SQI_DATABASE_URL"]["value"])
        assert user, name
        service = name.removesuffix("-api").removesuffix("-worker")
        expected = "sqi_owner" if name == "sqi-migrate" else f"sqi_{service}"
        assert user.group(1) == expected, f"{name} connects as {user.group(1)}"
        secret = env["SQI_DATABASE_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"]
        assert secret == ("sqi-pg-app" if name == "sqi-migrate" else f"sqi-pg-{service}"), name
    (job,) = of_kind(docs, "Job")
    job_env = {e["name"]: e.get("value") for e in pod_spec(job)["containers"][0]["env"]}
    assert job_env["SQI_MIGRATE_ROLE_PREFIX"] == "sqi_", "migrations must run as each service's role"


# ---------------------------------------------------------------------------- metrics, alerts, runbook


def catalogue_series() -> set[str]:
    """Every series name the catalogue can expose (counters' _total, histograms' _bucket, …)."""
    names = set()
    for metric in vars(shared.metrics).values():
        if isinstance(metric, MetricWrapperBase):
            for family in metric.describe():
                base = family.name
                kind = family.type
                names |= {
                    "counter": {f"{base}_total", f"{base}_created"},
                    "histogram": {f"{base}_bucket", f"{base}_count", f"{base}_sum", f"{base}_created"},
                    "gauge": {base},
                }.get(kind, {base})
    return names


def alert_rules(docs: list[dict]) -> list[dict]:
    (rule,) = of_kind(docs, "PrometheusRule")
    return [r for g in rule["spec"]["groups"] for r in g["rules"]]


def test_every_metric_an_alert_or_the_dashboard_uses_is_in_the_catalogue(rendered):
    docs = rendered["production"]
    series = catalogue_series() | PROMETHEUS_BUILTINS
    used = {m for r in alert_rules(docs) for m in METRIC.findall(r["expr"])}
    (dashboard,) = [c for c in of_kind(docs, "ConfigMap") if c["metadata"]["name"] == "sqi-grafana-dashboard"]
    board = json.loads(next(iter(dashboard["data"].values())))
    used_by_board = {m for p in board["panels"] for t in p["targets"] for m in METRIC.findall(t["expr"])}
    assert used, "no alert reads an SQI metric"
    assert not used - series, f"alerts use metrics not in shared.metrics: {used - series}"
    assert not used_by_board - series, f"the dashboard uses unknown metrics: {used_by_board - series}"
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"


def test_the_catalogue_is_served_by_every_process_that_imports_it():
    exposition = generate_latest().decode()
    for name in ("sqi_outbox_pending_rows", "sqi_consumer_lag_messages", "sqi_http_requests_total"):
        assert f"# TYPE {name.removesuffix('_total')}" in exposition


def series_observed_by(package: Path) -> set[str]:
    """Series of the catalogue metrics that a package's modules import (and so observe)."""
    names: set[str] = set()
    for module in package.glob("*.py"):
        for imported in re.findall(r"from shared\.metrics import ([A-Z_, ]+)", module.read_text()):
            for const in (c.strip() for c in imported.split(",")):
                for family in getattr(shared.metrics, const).describe():
                    names.add(family.name + ("_total" if family.type == "counter" else ""))
    return names


def test_alerts_on_messaging_metrics_are_read_from_a_running_worker(rendered):
    """The metrics shared.messaging observes and the alerts use are among those that
    tests/integration/test_metrics_worker.py reads, with real values, from a running worker."""
    from tests.integration.test_metrics_worker import EXPECTED

    observed = series_observed_by(REPO / "shared" / "messaging")
    used = {m for r in alert_rules(rendered["production"]) for m in METRIC.findall(r["expr"])}
    assert observed & used, "no alert on the messaging metrics"
    assert observed <= set(EXPECTED), f"observed but not read from a running worker: {observed - set(EXPECTED)}"


def test_every_alert_has_a_runbook_entry(rendered):
    runbook = (REPO / "docs" / "operations.md").read_text()
    anchors = {
        re.sub(r"[^a-z0-9 -]", "", h.strip().lower()).replace(" ", "-")
        for h in re.findall(r"^#{2,4} (.+)$", runbook, re.M)
    }
    for rule in alert_rules(rendered["production"]):
        url = rule["annotations"]["runbook_url"]
        assert url.split("#")[0].endswith("docs/operations.md"), rule["alert"]
        assert url.split("#")[1] in anchors, f"{rule['alert']}: no '{url.split('#')[1]}' section in operations.md"
        assert rule["labels"]["severity"] in {"warning", "critical"}


def test_worker_grace_fits_in_the_pods_grace(overlay):
    _, docs = overlay
    for d in of_kind(docs, "Deployment"):
        if d["metadata"]["labels"].get("app.kubernetes.io/component") != "worker":
            continue
        env = {e["name"]: e.get("value") for e in pod_spec(d)["containers"][0]["env"]}
        grace = float(env["SQI_WORKER_SHUTDOWN_GRACE_S"])
        pod_grace = pod_spec(d)["terminationGracePeriodSeconds"]
        assert grace + 10 <= pod_grace, f"{d['metadata']['name']}: {grace} s of work in {pod_grace} s"


def test_the_collector_limits_memory_first_and_batches(rendered):
    (collector,) = of_kind(rendered["production"], "OpenTelemetryCollector")
    pipeline = collector["spec"]["config"]["service"]["pipelines"]["traces"]
    assert pipeline["processors"][0] == "memory_limiter" and "batch" in pipeline["processors"]
    assert "otlp" in pipeline["receivers"]
    (cfg,) = [c for c in of_kind(rendered["production"], "ConfigMap") if c["metadata"]["name"].startswith("sqi-config")]
    endpoint = cfg["data"]["OTEL_EXPORTER_OTLP_ENDPOINT"]
    assert endpoint.startswith(f"http://{collector['metadata']['name']}-collector.sqi.svc"), endpoint


def test_deploy_script_applies_every_phase_and_the_data_tier_first(rendered):
    script = (K8S / "deploy.sh").read_text()
    docs = rendered["production"]
    phases = {d["metadata"].get("labels", {}).get("sqi.gov.vn/deploy-phase") for d in docs} - {None}
    for phase in phases:
        assert f"sqi.gov.vn/deploy-phase={phase}" in script, phase
    operated = {"Cluster", "Pooler", "ScheduledBackup", "ObjectStore", "RabbitmqCluster", "Vhost", "User", "Permission"}
    for d in docs:
        if d["kind"] in operated:
            assert d["metadata"]["labels"]["sqi.gov.vn/deploy-phase"] == "data", d["metadata"]["name"]
    assert script.index("deploy-phase=data") < script.index("app.kubernetes.io/name=sqi-migrate")
    # The Secrets the script requires are the ones the manifests use.
    for secret in ("sqi-app-secrets", "sqi-jwt-public-keys", "sqi-backup-object-store", "sqi-pg-app"):
        assert secret in script


def test_the_recompute_job_is_valid_hardened_and_runs_the_cli(rendered):
    import kubernetes_validate
    import yaml

    (job,) = yaml.safe_load_all((K8S / "jobs" / "recompute.yaml").read_text())
    kubernetes_validate.validate(job, "1.30", strict=True)
    spec = pod_spec(job)
    (c,) = spec["containers"]
    assert c["command"][:4] == ["python", "-m", "sqi_cli", "recompute"]
    sc = c["securityContext"]
    assert sc["readOnlyRootFilesystem"] and not sc["allowPrivilegeEscalation"] and sc["capabilities"]["drop"] == ["ALL"]
    assert spec["securityContext"]["runAsNonRoot"] and spec["automountServiceAccountToken"] is False
    # The same database role and broker user as the scoring worker, and a policy to the gateway.
    worker = {
        e["name"]: e
        for e in pod_spec(by_name(rendered["production"], "Deployment")["scoring-worker"])["containers"][0]["env"]
    }
    env = {e["name"]: e for e in c["env"]}
    for name in ("SQI_DATABASE_URL", "SQI_DATABASE_PASSWORD", "SQI_AMQP_USERNAME", "SQI_AMQP_PASSWORD"):
        assert env[name] == worker[name], name
    policies = by_name(rendered["production"], "NetworkPolicy")
    assert (
        policies["recompute-to-gateway"]["spec"]["podSelector"]["matchLabels"].items()
        <= job["metadata"]["labels"].items()
    )


def test_the_apis_that_listen_do_so_past_the_pooler(rendered):
    """PgBouncer in transaction mode cannot carry LISTEN: the scoring and reporting APIs (each
    holds one LISTEN connection) connect through the pooler for queries and to the primary for it."""
    for overlay, docs in rendered.items():
        apis = {w["metadata"]["name"]: w for w in workloads(docs) if w["metadata"]["name"].endswith("-api")}
        for name in ("scoring-api", "reporting-api"):
            env = {e["name"]: e.get("value") for e in pod_spec(apis[name])["containers"][0]["env"]}
            service = name.removesuffix("-api")
            assert "$(SQI_DB_POOLED_HOST)" in env["SQI_DATABASE_URL"], (overlay, name)
            assert (
                env["SQI_LISTEN_DATABASE_URL"] == f"postgresql+asyncpg://sqi_{service}@$(SQI_DB_HOST)/sqi?ssl=require"
            )
        assert all(
            "SQI_LISTEN_DATABASE_URL" not in str(pod_spec(w))
            for n, w in apis.items()
            if n not in ("scoring-api", "reporting-api")
        )


def test_the_gateway_keeps_idle_connections_longer_than_the_ingress(rendered):
    """ingress-nginx reuses an idle upstream connection for up to 60 s (its default): the gateway
    must not close one first, or a request sent down it meets a closed socket (a 502; a POST is
    not retried). ``./sqi up`` runs the gateway the same way."""
    for overlay, docs in rendered.items():
        gateway = next(w for w in workloads(docs) if w["metadata"]["name"] == "gateway")
        command = pod_spec(gateway)["containers"][0]["command"]
        keep_alive = int(command[command.index("--timeout-keep-alive") + 1])
        assert keep_alive > 60, overlay
        assert keep_alive == GATEWAY_KEEP_ALIVE_S, overlay
    local = dict(Platform(18000).commands())["gateway"]
    assert local[local.index("--timeout-keep-alive") + 1] == str(GATEWAY_KEEP_ALIVE_S)
