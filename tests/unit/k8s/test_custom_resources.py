"""Every custom resource in the overlays is checked against its operator's schema, kept in k8s/schemas/.

KEDA and Prometheus Operator: the CRD schemas published in the npm model packages (re-vendored by
``k8s/schemas/vendor_npm_schemas.py``). CloudNativePG (with its barman-cloud plugin), the RabbitMQ
operators and the OpenTelemetry Operator: schemas written for this repository from their CRDs
(each schema's description names the CRD file and version). Validation is strict like the API
server's field validation: an object schema that lists its properties accepts no other field.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from typing import Any

import jsonschema
import pytest

from .conftest import K8S
from .test_manifests import of_kind

SCHEMAS = K8S / "schemas"
# (apiVersion, kind) -> schema file: every custom resource the overlays may contain.
CUSTOM_RESOURCES = {
    ("keda.sh/v1alpha1", "ScaledObject"): "keda/scaledobject.json",
    ("keda.sh/v1alpha1", "TriggerAuthentication"): "keda/triggerauthentication.json",
    ("monitoring.coreos.com/v1", "PodMonitor"): "prometheus-operator/podmonitor.json",
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "prometheus-operator/servicemonitor.json",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "prometheus-operator/prometheusrule.json",
    ("postgresql.cnpg.io/v1", "Cluster"): "cloudnative-pg/cluster.json",
    ("postgresql.cnpg.io/v1", "Pooler"): "cloudnative-pg/pooler.json",
    ("postgresql.cnpg.io/v1", "ScheduledBackup"): "cloudnative-pg/scheduledbackup.json",
    ("barmancloud.cnpg.io/v1", "ObjectStore"): "cloudnative-pg/objectstore.json",
    ("rabbitmq.com/v1beta1", "RabbitmqCluster"): "rabbitmq/rabbitmqcluster.json",
    ("rabbitmq.com/v1beta1", "User"): "rabbitmq/user.json",
    ("rabbitmq.com/v1beta1", "Permission"): "rabbitmq/permission.json",
    ("rabbitmq.com/v1beta1", "Vhost"): "rabbitmq/vhost.json",
    ("opentelemetry.io/v1beta1", "OpenTelemetryCollector"): "opentelemetry/opentelemetrycollector.json",
    ("external-secrets.io/v1", "ExternalSecret"): "external-secrets/externalsecret.json",
    ("generators.external-secrets.io/v1alpha1", "Password"): "external-secrets/password.json",
}
# The kinds the brief requires in production, each with its schema.
REQUIRED_IN_PRODUCTION = {
    "Cluster",
    "Pooler",
    "ScheduledBackup",
    "ObjectStore",
    "RabbitmqCluster",
    "User",
    "Permission",
    "Vhost",
    "ScaledObject",
    "PodMonitor",
    "PrometheusRule",
    "OpenTelemetryCollector",
    "ExternalSecret",
    "Password",
}


def is_custom(doc: dict[str, Any]) -> bool:
    group = doc["apiVersion"].rpartition("/")[0]
    return "." in group and not group.endswith(".k8s.io")


def closed(schema: Any) -> Any:
    """Strict field validation: objects with declared properties refuse undeclared ones."""
    if isinstance(schema, dict):
        schema = {k: closed(v) for k, v in schema.items()}
        if schema.get("type") == "object" and "properties" in schema and "additionalProperties" not in schema:
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [closed(s) for s in schema]
    return schema


@cache
def schema_for(api_version: str, kind: str) -> dict[str, Any]:
    raw = json.loads((SCHEMAS / CUSTOM_RESOURCES[(api_version, kind)]).read_text())
    return closed(raw)


def test_every_schema_names_its_source_and_version():
    for path in CUSTOM_RESOURCES.values():
        description = json.loads((SCHEMAS / path).read_text())["description"]
        assert "npm package @kubernetes-models/" in description or " at v" in description, path


def test_only_custom_resources_with_a_schema(overlay):
    name, docs = overlay
    unknown = {(d["apiVersion"], d["kind"]) for d in docs if is_custom(d)} - set(CUSTOM_RESOURCES)
    assert not unknown, f"{name}: custom resources without a schema in k8s/schemas: {unknown}"


def test_production_has_the_operated_data_tier_and_telemetry(rendered):
    kinds = {d["kind"] for d in rendered["production"] if is_custom(d)}
    assert kinds >= REQUIRED_IN_PRODUCTION, REQUIRED_IN_PRODUCTION - kinds


def test_custom_resources_match_their_schemas(overlay):
    name, docs = overlay
    errors = []
    for d in docs:
        if not is_custom(d):
            continue
        validator = jsonschema.Draft7Validator(schema_for(d["apiVersion"], d["kind"]))
        for error in validator.iter_errors(d):
            where = ".".join(str(p) for p in error.absolute_path)
            errors.append(f"{d['kind']}/{d['metadata']['name']}: {where}: {error.message}")
    assert not errors, f"{name}:\n" + "\n".join(errors)


@pytest.mark.parametrize(
    ("kind", "mutate"),
    [
        ("ScaledObject", lambda d: d["spec"].update(minReplicaCount="two")),
        ("PrometheusRule", lambda d: d["spec"]["groups"][0]["rules"][0].update(expresion="up")),
        ("PodMonitor", lambda d: d["spec"].update(podMetricsEndpoint=[])),
        ("Cluster", lambda d: d["spec"]["postgresql"]["synchronous"].update(method="all")),
        ("Pooler", lambda d: d["spec"]["pgbouncer"].update(poolMode="statement")),
        ("RabbitmqCluster", lambda d: d["spec"].update(replica=3)),
        ("Permission", lambda d: d["spec"].pop("vhost")),
        ("OpenTelemetryCollector", lambda d: d["spec"]["config"]["service"].pop("pipelines")),
        ("ExternalSecret", lambda d: d["spec"].update(refreshPolicy="Once")),
        ("Password", lambda d: d["spec"].pop("length")),
    ],
)
def test_schemas_reject_a_broken_resource(rendered, kind, mutate):
    """Negative controls: a misspelt field, a wrong type or enum, a missing required field fail."""
    (original, *_) = of_kind(rendered["production"], kind)
    broken = copy.deepcopy(original)
    mutate(broken)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema_for(broken["apiVersion"], kind))


def test_permissions_name_exactly_one_user(rendered):
    users = {u["metadata"]["name"] for u in of_kind(rendered["production"], "User")}
    for p in of_kind(rendered["production"], "Permission"):
        spec = p["spec"]
        assert ("user" in spec) != ("userReference" in spec), p["metadata"]["name"]
        assert spec.get("userReference", {}).get("name", spec.get("user")) in users
