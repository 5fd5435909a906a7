"""Under default-deny, every connection a production process opens is allowed both
ways (egress of the client's pod, ingress of the server's pod), with the labels the operators give
their pods; and the public entry, the broker and the certificates are what production needs.

A connection is read from the process's own environment (rendered production overlay): the
database URLs (SQI_DATABASE_URL, and SQI_LISTEN_DATABASE_URL for the APIs that LISTEN), the broker
(SQI_AMQP_URL) and the OTLP exporter (OTEL_EXPORTER_OTLP_ENDPOINT).
"""

from __future__ import annotations

import re

import yaml

from .conftest import K8S
from .test_manifests import by_name, of_kind, pod_labels, selector_matches, workloads
from .test_production_settings import production_processes  # noqa: F401 (fixture)

# Labels the operators put on the pods they run (CloudNativePG 1.30, RabbitMQ cluster operator,
# OpenTelemetry operator): these pods are not rendered, only their custom resources are.
OPERATED_PODS = {
    "sqi-pg-rw": {"cnpg.io/cluster": "sqi-pg", "cnpg.io/instanceRole": "primary", "role": "primary"},
    "sqi-pg-pooler-rw": {"cnpg.io/poolerName": "sqi-pg-pooler-rw", "cnpg.io/podRole": "pooler"},
    "sqi-rabbitmq": {"app.kubernetes.io/name": "sqi-rabbitmq", "app.kubernetes.io/component": "rabbitmq"},
    "sqi-collector": {
        "app.kubernetes.io/name": "sqi-collector",
        "app.kubernetes.io/component": "opentelemetry-collector",
    },
}


def _peer_allows(peer: dict, labels: dict) -> bool:
    if "ipBlock" in peer or "namespaceSelector" in peer:
        return False  # another namespace or an address range: not a pod of this namespace
    return selector_matches(peer["podSelector"], labels)


def _rule_allows(rule: dict, side: str, labels: dict, port: int) -> bool:
    ports = rule.get("ports")
    if ports and not any(p.get("port") == port for p in ports):
        return False
    peers = rule.get(side)
    return not peers or any(_peer_allows(peer, labels) for peer in peers)


def allowed(docs: list[dict], src: dict, dst: dict, port: int) -> tuple[bool, bool]:
    """(egress of src allows it, ingress of dst allows it) under the namespace's policies."""
    policies = of_kind(docs, "NetworkPolicy")
    out = [
        p for p in policies if "Egress" in p["spec"]["policyTypes"] and selector_matches(p["spec"]["podSelector"], src)
    ]
    into = [
        p for p in policies if "Ingress" in p["spec"]["policyTypes"] and selector_matches(p["spec"]["podSelector"], dst)
    ]
    egress = not out or any(_rule_allows(r, "to", dst, port) for p in out for r in p["spec"].get("egress", []))
    ingress = not into or any(_rule_allows(r, "from", src, port) for p in into for r in p["spec"].get("ingress", []))
    return egress, ingress


def _target(url: str) -> tuple[str, int]:
    host, _, port = re.split(r"[/?]", url.split("//", 1)[1].rpartition("@")[2])[0].partition(":")
    return host.split(".")[0], int(port)


def test_every_connection_of_every_production_process_is_allowed(rendered, production_processes):  # noqa: F811
    docs = rendered["production"]
    labels = {w["metadata"]["name"]: pod_labels(w) for w in workloads(docs)}
    blocked = []
    for name, _, env in production_processes:
        for var in ("SQI_DATABASE_URL", "SQI_LISTEN_DATABASE_URL", "SQI_AMQP_URL", "OTEL_EXPORTER_OTLP_ENDPOINT"):
            if var not in env:
                continue
            host, port = _target(env[var])
            egress, ingress = allowed(docs, labels[name], OPERATED_PODS[host], port)
            if not (egress and ingress):
                side = " and ".join(s for s, ok in (("egress", egress), ("ingress", ingress)) if not ok)
                blocked.append(f"{name} -> {host}:{port} ({var}): no {side} rule")
    assert not blocked, "blocked by the NetworkPolicies:\n" + "\n".join(blocked)


def test_the_check_has_teeth(rendered):
    """Negative control: a pod without the component label reaches neither database nor broker."""
    docs = rendered["production"]
    stranger = {"app.kubernetes.io/name": "stranger"}
    assert allowed(docs, stranger, OPERATED_PODS["sqi-pg-rw"], 5432)[1] is False
    assert allowed(docs, stranger, OPERATED_PODS["sqi-rabbitmq"], 5672) == (False, False)
    gateway = pod_labels(by_name(docs, "Deployment")["gateway"])
    assert allowed(docs, gateway, OPERATED_PODS["sqi-pg-pooler-rw"], 5432) == (True, True)


def test_the_broker_has_a_disruption_budget(rendered):
    """Three RabbitMQ nodes holding quorum queues, with pause_minority: a node drain that evicts
    two at once stops the broker. The RabbitMQ cluster operator creates no PodDisruptionBudget
    (CloudNativePG does, for its instances and poolers): the overlay has to."""
    docs = rendered["production"]
    (broker,) = of_kind(docs, "RabbitmqCluster")
    pods = OPERATED_PODS[broker["metadata"]["name"]]
    budgets = [p for p in of_kind(docs, "PodDisruptionBudget") if selector_matches(p["spec"]["selector"], pods)]
    assert budgets, f"no PodDisruptionBudget selects the {broker['spec']['replicas']} RabbitMQ nodes"
    assert all(p["spec"].get("maxUnavailable") == 1 for p in budgets)


def test_the_public_certificate_comes_from_somewhere(rendered):
    """The Ingress terminates TLS with Secret sqi-tls. Nothing creates it: no cert-manager
    annotation, not in secrets.example.yaml, not required by deploy.sh. ingress-nginx then serves
    its self-signed "Fake Certificate" and every integrator's TLS verification fails."""
    docs = rendered["production"]
    (ingress,) = of_kind(docs, "Ingress")
    annotations = ingress["metadata"].get("annotations", {})
    issued = any(k.startswith("cert-manager.io/") for k in annotations)
    documented = {
        d["metadata"]["name"] for d in yaml.safe_load_all((K8S / "examples" / "secrets.example.yaml").read_text())
    }
    script = (K8S / "deploy.sh").read_text()
    for tls in ingress["spec"]["tls"]:
        secret = tls["secretName"]
        assert issued or (secret in documented and secret in script), (
            f"Ingress TLS Secret {secret}: no cert-manager issuer annotation, and not documented/required"
        )
