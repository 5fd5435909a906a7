"""Checks of the Kubernetes manifests (k8s/) without a cluster.

Each overlay is rendered with `kubectl kustomize`; then
- every built-in kind is validated with kubernetes-validate (strict: unknown fields fail),
  against the oldest Kubernetes version we support and the newest the package knows;
- custom resources are checked against their operators' schemas in test_custom_resources.py;
  here: KEDA's cross-references;
- policy checks: resources, probes, hardening, image pinning, PDB/Service/HPA wiring,
  network exposure, and the process commands / env names the code must honour.
"""

# S104/S108: "0.0.0.0" and "/tmp" are values under test here, not sockets or files we open.
# ruff: noqa: S104, S108

from __future__ import annotations

import re
from importlib.util import find_spec

import kubernetes_validate
import pytest
import yaml

from sqi_cli.migrate import subscriptions

from .conftest import K8S, PENDING_MODULES, REPO

# Oldest supported cluster version (PodSecurity labels, autoscaling/v2, policy/v1 …)
# and the newest schema in the installed package, to catch removed APIs early.
K8S_VERSIONS = ("1.30", kubernetes_validate.utils.latest_version())

API_PROCESSES = {
    "gateway": [
        "uvicorn",
        "gateway.app:create_app",
        "--factory",
        "--no-proxy-headers",
        "--host",
        "0.0.0.0",
        "--port",
        "8000",
        "--timeout-keep-alive",
        "75",
    ],
    **{
        f"{n}-api": [
            "uvicorn",
            f"services.{n}.api.app:create_app",
            "--factory",
            "--host",
            "0.0.0.0",
            "--port",
            "8000",
        ]
        for n in ("ingest", "scoring", "feedback", "reporting")
    },
}
# Services with a consumer process get a worker Deployment (reporting's may still be pending).
WORKER_PROCESSES = {
    f"{n}-worker": ["python", "-m", f"services.{n}.worker"]
    for n in ("ingest", "scoring", "feedback", "reporting")
    if find_spec(f"services.{n}.worker") or f"services.{n}.worker" in PENDING_MODULES
}
MIGRATE_COMMAND = ["python", "-m", "sqi_cli", "migrate"]
# The consumer queue each KEDA-scaled worker is scaled on (must match the code's topology).
WORKER_QUEUES = {
    "scoring-worker": {"scoring.dossier-events"},
    "feedback-worker": {"feedback.dossier-units"},
    "reporting-worker": {"reporting.dossiers", "reporting.scores"},
}
CR_GROUPS = (
    "keda.sh/",
    "monitoring.coreos.com/",
    "postgresql.cnpg.io/",
    "barmancloud.cnpg.io/",
    "rabbitmq.com/",
    "opentelemetry.io/",
    "external-secrets.io/",
    "generators.external-secrets.io/",
)


# ---------------------------------------------------------------------------- helpers


def of_kind(docs: list[dict], kind: str) -> list[dict]:
    return [d for d in docs if d["kind"] == kind]


def by_name(docs: list[dict], kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in of_kind(docs, kind)}


def workloads(docs: list[dict]) -> list[dict]:
    return of_kind(docs, "Deployment") + of_kind(docs, "Job")


def pod_spec(w: dict) -> dict:
    return w["spec"]["template"]["spec"]


def containers(w: dict) -> list[dict]:
    spec = pod_spec(w)
    return spec.get("initContainers", []) + spec["containers"]


def selector_matches(selector: dict, labels: dict) -> bool:
    """Label-selector semantics (matchLabels + matchExpressions)."""
    for k, v in selector.get("matchLabels", {}).items():
        if labels.get(k) != v:
            return False
    for expr in selector.get("matchExpressions", []):
        key, op, values = expr["key"], expr["operator"], expr.get("values", [])
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def pod_labels(w: dict) -> dict:
    return w["spec"]["template"]["metadata"].get("labels", {})


def quantity(q: str | int | float) -> float:
    """Kubernetes quantity -> float (bytes or cores)."""
    s = str(q)
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 1e3, "M": 1e6, "G": 1e9}
    for suffix, factor in sorted(units.items(), key=lambda kv: -len(kv[0])):
        if s.endswith(suffix):
            return float(s[: -len(suffix)]) * factor
    return float(s)


def ident(d: dict) -> str:
    return f"{d['kind']}/{d['metadata']['name']}"


# ---------------------------------------------------------------------------- rendering + schemas


def test_overlays_render_something(overlay):
    _, docs = overlay
    kinds = {d["kind"] for d in docs}
    assert {"Namespace", "Deployment", "Service", "Job", "ScaledObject", "Ingress"} <= kinds


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_builtin_kinds_validate_strictly(overlay, version):
    name, docs = overlay
    errors = []
    for d in docs:
        if d["apiVersion"].startswith(CR_GROUPS):
            continue
        try:
            kubernetes_validate.validate(d, version, strict=True)
        except kubernetes_validate.ValidationError as e:
            path = ".".join(str(p) for p in e.path)
            errors.append(f"{ident(d)}: {path}: {e.message}")
        except kubernetes_validate.SchemaNotFoundError as e:  # unknown kind/apiVersion = an error here
            errors.append(f"{ident(d)}: {e.message}")
    assert not errors, f"{name} @ {version}:\n" + "\n".join(errors)


def test_strict_validation_catches_unknown_fields():
    """Negative control: the validator really is strict."""
    bad = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "x"},
        "spec": {
            "selector": {"matchLabels": {"a": "b"}},
            "template": {
                "metadata": {"labels": {"a": "b"}},
                "spec": {"containers": [{"name": "c", "image": "i", "livenessProbes": {}}]},
            },
        },
    }
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, K8S_VERSIONS[0], strict=True)


def test_keda_references(overlay):
    _, docs = overlay
    deployments = by_name(docs, "Deployment")
    auths = by_name(docs, "TriggerAuthentication")
    hpa_targets = {h["spec"]["scaleTargetRef"]["name"] for h in of_kind(docs, "HorizontalPodAutoscaler")}
    queues = {}
    for so in of_kind(docs, "ScaledObject"):
        target = so["spec"]["scaleTargetRef"]["name"]
        assert target in deployments, f"{ident(so)} scales a Deployment that does not exist: {target}"
        assert target not in hpa_targets, f"{target} has both an HPA and a KEDA ScaledObject"
        assert "replicas" not in deployments[target]["spec"], f"{target}: KEDA owns replicas; drop spec.replicas"
        for t in so["spec"]["triggers"]:
            assert t["authenticationRef"]["name"] in auths, ident(so)
            queues.setdefault(target, set()).add(t["metadata"]["queueName"])
            # The broker's address comes from the worker's env, never with credentials in clear.
            assert "host" not in t["metadata"], ident(so)
            env_names = {e["name"] for e in pod_spec(deployments[target])["containers"][0].get("env", [])}
            config = {k for c in of_kind(docs, "ConfigMap") for k in c.get("data", {})}
            assert t["metadata"]["hostFromEnv"] in env_names | config, ident(so)
    for ta in auths.values():
        assert {r["parameter"] for r in ta["spec"]["secretTargetRef"]} == {"username", "password"}
    assert queues == WORKER_QUEUES
    declared = {sub.queue for sub in subscriptions()}
    watched = {
        q
        for target, qs in queues.items()
        if pod_spec(deployments[target])["containers"][0]["command"][2] not in PENDING_MODULES
        for q in qs
    }
    assert watched <= declared, f"KEDA watches queues the code does not declare: {watched - declared}"


# ---------------------------------------------------------------------------- policy


def test_every_container_has_resources(overlay):
    name, docs = overlay
    for w in workloads(docs):
        for c in containers(w):
            r = c.get("resources", {})
            for part in ("requests", "limits"):
                for res in ("cpu", "memory"):
                    assert res in r.get(part, {}), f"{name} {ident(w)}/{c['name']}: no {part}.{res}"
            assert quantity(r["requests"]["memory"]) <= quantity(r["limits"]["memory"]), ident(w)
            assert quantity(r["requests"]["cpu"]) <= quantity(r["limits"]["cpu"]), ident(w)
            if name == "production":
                # stricter: no memory overcommit in production
                assert r["requests"]["memory"] == r["limits"]["memory"], f"{ident(w)}: memory request != limit"


def test_probes(overlay):
    _, docs = overlay
    for d in of_kind(docs, "Deployment"):
        c = pod_spec(d)["containers"][0]
        port_names = {p["name"] for p in c.get("ports", [])} | {p["containerPort"] for p in c.get("ports", [])}
        needed = ("livenessProbe", "readinessProbe", "startupProbe")
        for probe in needed:
            assert probe in c, f"{ident(d)}: no {probe}"
            http = c[probe]["httpGet"]
            assert http["port"] in port_names, f"{ident(d)} {probe} targets an undeclared port {http['port']}"
        assert c["livenessProbe"]["httpGet"]["path"] == "/healthz", ident(d)
        ready = "/readyz/self" if d["metadata"]["name"] == "gateway" else "/readyz"  # the gateway alone
        assert c["readinessProbe"]["httpGet"]["path"] == ready, ident(d)


def test_pod_hardening(overlay):
    _, docs = overlay
    for w in workloads(docs):
        spec = pod_spec(w)
        psc = spec.get("securityContext", {})
        assert spec.get("automountServiceAccountToken") is False, ident(w)
        assert psc.get("seccompProfile", {}).get("type") == "RuntimeDefault", ident(w)
        tmp_volumes = {v["name"] for v in spec.get("volumes", []) if "emptyDir" in v}
        for c in containers(w):
            sc = c.get("securityContext", {})
            where = f"{ident(w)}/{c['name']}"
            assert sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is True, where
            assert (sc.get("runAsUser", psc.get("runAsUser")) or 0) != 0, where
            assert sc.get("readOnlyRootFilesystem") is True, where
            assert sc.get("allowPrivilegeEscalation") is False, where
            assert sc.get("privileged", False) is False, where
            assert sc.get("capabilities", {}).get("drop") == ["ALL"], where
            assert not sc.get("capabilities", {}).get("add"), where
            mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
            assert mounts.get("/tmp") in tmp_volumes, f"{where}: /tmp must be an emptyDir (read-only root)"


def test_namespace_enforces_restricted_pod_security(overlay):
    _, docs = overlay
    (ns,) = of_kind(docs, "Namespace")
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    outside = [ident(d) for d in docs if d["kind"] != "Namespace" and d["metadata"].get("namespace") != "sqi"]
    assert not outside, f"not in namespace sqi: {outside}"


def test_images(overlay):
    name, docs = overlay
    images = {c["image"] for w in workloads(docs) for c in containers(w)}
    assert len(images) == 1, f"one image for every process, got {images}"
    (image,) = images
    if name == "production":
        digest = "@sha256:" in image
        tag = image.rsplit("/", 1)[-1].split("@")[0].partition(":")[2]
        assert digest or tag, f"production image not pinned: {image}"
        assert tag not in ("latest", "dev", "main", "master"), f"production image uses a moving tag: {image}"
    assert not image.endswith(":latest")


def test_process_commands(overlay):
    _, docs = overlay
    deployments = by_name(docs, "Deployment")
    assert set(deployments) == set(API_PROCESSES) | set(WORKER_PROCESSES)
    for name, cmd in {**API_PROCESSES, **WORKER_PROCESSES}.items():
        assert pod_spec(deployments[name])["containers"][0]["command"] == cmd, name
    jobs = of_kind(docs, "Job")
    assert [pod_spec(j)["containers"][0]["command"] for j in jobs] == [MIGRATE_COMMAND]


def test_every_deployment_has_a_pdb(overlay):
    _, docs = overlay
    pdbs = of_kind(docs, "PodDisruptionBudget")
    for d in of_kind(docs, "Deployment"):
        matching = [p for p in pdbs if selector_matches(p["spec"]["selector"], pod_labels(d))]
        assert len(matching) == 1, f"{ident(d)} is selected by {len(matching)} PodDisruptionBudgets"
        # Eviction must always be possible (minAvailable == replicas would block node drains).
        assert "maxUnavailable" in matching[0]["spec"], ident(matching[0])


def test_every_service_selects_a_deployment(overlay):
    _, docs = overlay
    deployments = of_kind(docs, "Deployment")
    for s in of_kind(docs, "Service"):
        sel = {"matchLabels": s["spec"]["selector"]}
        targets = [d for d in deployments if selector_matches(sel, pod_labels(d))]
        assert len(targets) == 1, f"{ident(s)} selects {len(targets)} Deployments"
        ports = {p["name"] for c in containers(targets[0]) for p in c.get("ports", [])}
        for p in s["spec"]["ports"]:
            assert p["targetPort"] in ports, f"{ident(s)}: targetPort {p['targetPort']} not declared"


def test_apis_have_services_and_hpas_workers_do_not(overlay):
    _, docs = overlay
    services = by_name(docs, "Service")
    hpas = {h["spec"]["scaleTargetRef"]["name"]: h for h in of_kind(docs, "HorizontalPodAutoscaler")}
    deployments = by_name(docs, "Deployment")
    assert set(services) == set(API_PROCESSES)
    assert set(hpas) == set(API_PROCESSES)
    for name, h in hpas.items():
        assert h["spec"]["minReplicas"] <= h["spec"]["maxReplicas"]
        assert h["spec"]["metrics"][0]["resource"]["name"] == "cpu"
        assert "replicas" not in deployments[name]["spec"], f"{name}: HPA owns replicas; drop spec.replicas"


def test_topology_spread_and_scrape_annotations(overlay):
    _, docs = overlay
    for d in of_kind(docs, "Deployment"):
        spec, labels = pod_spec(d), pod_labels(d)
        tsc = spec.get("topologySpreadConstraints", [])
        assert {t["topologyKey"] for t in tsc} >= {"kubernetes.io/hostname", "topology.kubernetes.io/zone"}
        assert all(selector_matches(t["labelSelector"], labels) for t in tsc), ident(d)
        ann = d["spec"]["template"]["metadata"].get("annotations", {})
        assert ann.get("prometheus.io/scrape") == "true", ident(d)
        assert ann.get("prometheus.io/path") == "/metrics", ident(d)
        ports = {p["containerPort"] for p in spec["containers"][0]["ports"]}
        assert int(ann["prometheus.io/port"]) in ports, ident(d)


def _env(c: dict) -> dict[str, dict]:
    return {e["name"]: e for e in c.get("env", [])}


def test_env_contract(overlay):
    _, docs = overlay
    configmaps = by_name(docs, "ConfigMap")
    otel_names = set()
    for w in workloads(docs):
        c = pod_spec(w)["containers"][0]
        env = _env(c)
        # URLs carry no credentials: passwords come from Secrets, escaped into the URL by the settings.
        for url, password in (("SQI_DATABASE_URL", "SQI_DATABASE_PASSWORD"), ("SQI_AMQP_URL", "SQI_AMQP_PASSWORD")):
            if url == "SQI_AMQP_URL" and w["kind"] != "Deployment" and url not in env:
                continue
            value = env[url]["value"]
            userinfo = value.partition("//")[2].partition("@")[0] if "@" in value else ""
            assert ":" not in userinfo, f"{ident(w)}: a password in {url}"
            assert "secretKeyRef" in env[password]["valueFrom"], f"{ident(w)}: {password} not from a Secret"
        otel_names.add(env["OTEL_SERVICE_NAME"]["value"])
        refs = [e["configMapRef"]["name"] for e in c.get("envFrom", []) if "configMapRef" in e]
        assert refs and all(r in configmaps for r in refs), f"{ident(w)}: envFrom names a missing ConfigMap"
        for e in c.get("env", []):
            assert (
                not re.search(r"(TOKEN|KEY|KEYS|PASSWORD|SECRET)$", e["name"])
                or "valueFrom" in e
                or e["name"].startswith(("OTEL_", "SQI_JWT_PUBLIC_KEYS_FILE"))
            ), f"{ident(w)}: {e['name']} in clear text"
    assert len(otel_names) == len(workloads(docs)), "OTEL_SERVICE_NAME must be unique per workload"
    cfg = (
        configmaps["sqi-config"]
        if "sqi-config" in configmaps
        else next(c for n, c in configmaps.items() if n.startswith("sqi-config"))
    )
    for key in ("SQI_ENVIRONMENT", "OTEL_EXPORTER_OTLP_ENDPOINT", "SQI_DB_HOST", "SQI_AMQP_BASE_URL"):
        assert key in cfg["data"]
    assert "@" not in cfg["data"]["SQI_AMQP_BASE_URL"], "no credentials in the ConfigMap"
    assert not any(
        k in cfg["data"]
        for k in ("SQI_DATABASE_URL", "SQI_AMQP_URL", "SQI_INTERNAL_TOKEN", "SQI_RATING_CODE_KEYS", "OTEL_SERVICE_NAME")
    )


def sqi_config(docs: list[dict]) -> dict:
    (cfg,) = [c for c in of_kind(docs, "ConfigMap") if c["metadata"]["name"].startswith("sqi-config")]
    return cfg


def test_production_runs_with_production_settings(rendered):
    assert sqi_config(rendered["production"])["data"]["SQI_ENVIRONMENT"] == "production"


def test_secret_references_are_documented(overlay):
    """Every Secret name/key the manifests use is in the example file — and no Secret is shipped."""
    _, docs = overlay
    assert not of_kind(docs, "Secret"), "Secrets are managed outside the kustomization"
    example = {
        d["metadata"]["name"]: set(d["stringData"])
        for d in yaml.safe_load_all((K8S / "examples" / "secrets.example.yaml").read_text())
    }
    used: set[tuple[str, str]] = set()
    for w in workloads(docs):
        for c in containers(w):
            for e in c.get("env", []):
                ref = e.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    used.add((ref["name"], ref["key"]))
        for v in pod_spec(w).get("volumes", []):
            if "secret" in v:
                used.add((v["secret"]["secretName"], "*"))
    for ta in of_kind(docs, "TriggerAuthentication"):
        for ref in ta["spec"]["secretTargetRef"]:
            used.add((ref["name"], ref["key"]))
    for cluster in of_kind(docs, "Cluster"):
        for role in cluster["spec"].get("managed", {}).get("roles", []):
            used.add((role["passwordSecret"]["name"], "password"))
    for store in of_kind(docs, "ObjectStore"):
        for ref in store["spec"]["configuration"].get("s3Credentials", {}).values():
            if isinstance(ref, dict):
                used.add((ref["name"], ref["key"]))
    for name, key in used:
        assert name in example, f"Secret {name} not documented in k8s/examples/secrets.example.yaml"
        assert key == "*" or key in example[name], f"Secret {name} key {key} not documented"


def test_example_secrets_are_outside_every_kustomization():
    for kfile in K8S.rglob("kustomization.yaml"):
        k = yaml.safe_load(kfile.read_text())
        listed = [str(x) for key in ("resources", "components") for x in k.get(key, [])]
        listed += [str(p.get("path", "")) for p in k.get("patches", [])]
        assert not any("examples" in x for x in listed), f"{kfile} references the example secrets"


def test_migration_job_runs_before_rollout(overlay):
    _, docs = overlay
    (job,) = of_kind(docs, "Job")
    assert pod_spec(job)["restartPolicy"] == "Never"
    assert job["spec"]["backoffLimit"] <= 3
    assert job["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"] == "-1"
    # k8s/deploy.sh applies these first (label), then the Job, then the rest.
    pre = {ident(d) for d in docs if d["metadata"].get("labels", {}).get("sqi.gov.vn/deploy-phase") == "pre-deploy"}
    env_from = [e["configMapRef"]["name"] for e in pod_spec(job)["containers"][0]["envFrom"]]
    assert {"Namespace/sqi", "ServiceAccount/sqi", *(f"ConfigMap/{n}" for n in env_from)} <= pre
    assert "app.kubernetes.io/name=sqi-migrate" in (K8S / "deploy.sh").read_text()
    # No app process runs migrations.
    for d in of_kind(docs, "Deployment"):
        assert "migrate" not in " ".join(pod_spec(d)["containers"][0]["command"]), ident(d)


# ---------------------------------------------------------------------------- network exposure


def _policies_for(docs: list[dict], labels: dict, ptype: str) -> list[dict]:
    return [
        p
        for p in of_kind(docs, "NetworkPolicy")
        if ptype in p["spec"].get("policyTypes", []) and selector_matches(p["spec"]["podSelector"], labels)
    ]


def test_default_deny(overlay):
    _, docs = overlay
    deny = [
        p
        for p in of_kind(docs, "NetworkPolicy")
        if p["spec"]["podSelector"] == {}
        and set(p["spec"]["policyTypes"]) == {"Ingress", "Egress"}
        and not p["spec"].get("ingress")
        and not p["spec"].get("egress")
    ]
    assert deny, "no default-deny NetworkPolicy"


REPORTING_PODS = ["reporting-api", "reporting-worker"]


def test_ingress_sources(overlay):
    """Only the gateway takes traffic from the ingress controller; APIs only from the gateway
    (and scoring's from reporting); workers from nobody but Prometheus."""
    _, docs = overlay
    deployments = by_name(docs, "Deployment")
    gateway_labels = pod_labels(deployments["gateway"])
    for name, d in deployments.items():
        sources = []
        for p in _policies_for(docs, pod_labels(d), "Ingress"):
            for rule in p["spec"].get("ingress", []):
                assert rule.get("from"), f"{p['metadata']['name']}: ingress from anywhere"
                sources += rule["from"]
        for src in sources:
            assert "ipBlock" not in src, f"{name}: ipBlock ingress"
            ns = src.get("namespaceSelector", {}).get("matchLabels", {}).get("kubernetes.io/metadata.name")
            if ns == "monitoring":
                continue
            if ns == "ingress-nginx":
                assert name == "gateway", f"{name} is reachable from the ingress controller"
                continue
            assert "namespaceSelector" not in src, f"{name}: unexpected namespace source {src}"
            if name == "gateway" and src["podSelector"] == {"matchLabels": {"sqi.gov.vn/tool": "recompute"}}:
                continue  # `sqi recompute` (k8s/jobs/recompute.yaml) asks the gateway for a replay
            reporting = {
                "key": "app.kubernetes.io/name",
                "operator": "In",
                "values": ["reporting-api", "reporting-worker"],
            }
            if name == "scoring-api" and src["podSelector"] == {"matchExpressions": [reporting]}:
                continue  # reporting reads the methodology documents from scoring
            assert name.endswith("-api") and selector_matches(src["podSelector"], gateway_labels), (
                f"{name}: reachable from {src}"
            )


def test_ingress_exposes_only_the_gateway(overlay):
    _, docs = overlay
    (ing,) = of_kind(docs, "Ingress")
    backends = {p["backend"]["service"]["name"] for r in ing["spec"]["rules"] for p in r["http"]["paths"]}
    assert backends == {"gateway"}
    body = ing["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-body-size"]
    assert quantity(body.replace("m", "Mi")) >= 10_000_000, "POST /api/v1/events takes up to 10 MB"
    assert ing["spec"].get("tls"), "TLS required"


def test_production_egress_goes_to_the_operated_data_tier(rendered):
    """Production's database and broker run in the namespace: egress targets their pods, no CIDR."""
    docs = rendered["production"]
    pols = by_name(docs, "NetworkPolicy")
    targets = {
        "allow-postgres-egress": [{"cnpg.io/cluster": "sqi-pg"}, {"cnpg.io/poolerName": "sqi-pg-pooler-rw"}],
        "allow-rabbitmq-egress": [{"app.kubernetes.io/name": "sqi-rabbitmq"}],
    }
    for name, selectors in targets.items():
        to = pols[name]["spec"]["egress"][0]["to"]
        assert [t["podSelector"]["matchLabels"] for t in to] == selectors, name
    (cluster,) = of_kind(docs, "Cluster")
    (pooler,) = of_kind(docs, "Pooler")
    (broker,) = of_kind(docs, "RabbitmqCluster")
    assert pooler["spec"]["cluster"]["name"] == cluster["metadata"]["name"] == "sqi-pg"
    assert pooler["metadata"]["name"] == "sqi-pg-pooler-rw" and broker["metadata"]["name"] == "sqi-rabbitmq"
    cfg = sqi_config(docs)["data"]
    assert cfg["SQI_DB_HOST"].startswith("sqi-pg-rw.sqi.svc")
    assert cfg["SQI_DB_POOLED_HOST"].startswith("sqi-pg-pooler-rw.sqi.svc")
    assert cfg["SQI_AMQP_BASE_URL"].startswith("amqp://sqi-rabbitmq.sqi.svc")


def test_production_data_tier(rendered):
    docs = rendered["production"]
    (cluster,) = of_kind(docs, "Cluster")
    spec = cluster["spec"]
    assert spec["instances"] == 3
    assert spec["postgresql"]["synchronous"]["number"] >= 1
    (plugin,) = [p for p in spec["plugins"] if p["name"] == "barman-cloud.cloudnative-pg.io"]
    assert plugin["isWALArchiver"] is True
    stores = by_name(docs, "ObjectStore")
    assert plugin["parameters"]["barmanObjectName"] in stores
    (backup,) = of_kind(docs, "ScheduledBackup")
    assert backup["spec"]["method"] == "plugin" and backup["spec"]["cluster"]["name"] == "sqi-pg"
    (broker,) = of_kind(docs, "RabbitmqCluster")
    assert broker["spec"]["replicas"] == 3
    (vhost,) = of_kind(docs, "Vhost")
    assert vhost["spec"]["name"] == "sqi" and sqi_config(docs)["data"]["SQI_AMQP_BASE_URL"].endswith("/sqi")
    # Every broker user a workload or KEDA uses is a User the topology operator manages.
    users = {u["metadata"]["name"] for u in of_kind(docs, "User")}
    used = {
        e["valueFrom"]["secretKeyRef"]["name"].removesuffix("-user-credentials")
        for w in workloads(docs)
        for e in pod_spec(w)["containers"][0].get("env", [])
        if e["name"] == "SQI_AMQP_PASSWORD"
    }
    used |= {
        r["name"].removesuffix("-user-credentials")
        for ta in of_kind(docs, "TriggerAuthentication")
        for r in ta["spec"]["secretTargetRef"]
    }
    assert used <= users, used - users
    # Nothing secret is committed: every Secret is generated or created out of band; the roles'
    # passwords are generated in the cluster, once, and never removed with their ExternalSecret.
    assert not of_kind(docs, "Secret")
    generated = {e["spec"]["target"]["name"]: e for e in of_kind(docs, "ExternalSecret")}
    for role in spec["managed"]["roles"]:
        external = generated[role["passwordSecret"]["name"]]
        assert external["spec"]["refreshPolicy"] == "CreatedOnce", role["name"]
        assert external["spec"]["target"]["creationPolicy"] == "Orphan", role["name"]
        assert external["spec"]["target"]["template"]["data"]["username"] == role["name"]


# ---------------------------------------------------------------------------- Dockerfile


def test_dockerfile_matches_the_manifests():
    text = (REPO / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim|^ARG PYTHON_IMAGE=python:3\.11-slim", text, re.M)
    assert "--require-virtualenv" in text and "--no-cache-dir" in text and "--no-deps ." in text
    assert "requirements.lock" in text
    users = re.findall(r"^USER\s+(\S+)", text, re.M)
    assert users and users[-1].split(":")[0] == "10001", "runtime USER must be the numeric uid 10001"
    # Installed packages do not sit next to data/: the image says where the reference data is.
    copied = re.search(r"^COPY .*\bdata (\S+)$", text, re.M)
    assert copied and f"SQI_REFERENCE_DIR={copied.group(1)}/reference" in text
    assert "PYTHONDONTWRITEBYTECODE=1" in text and "compileall" in text, "read-only root: no .pyc writes"
    # the uid the pods run as
    patch = yaml.safe_load((K8S / "base" / "patches" / "pod-defaults.yaml").read_text())
    assert patch["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == 10001


def test_dockerignore_keeps_secrets_and_venv_out():
    lines = (REPO / ".dockerignore").read_text().splitlines()
    assert lines and "*" in lines, ".dockerignore should be an allow-list"
    assert not any(line.startswith("!") and (".venv" in line or ".git" in line or "k8s" in line) for line in lines)
