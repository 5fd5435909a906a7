"""At the autoscalers' ceilings, the production processes' PostgreSQL connections fit
the limits the Cluster sets (each managed role's connectionLimit, max_connections).

Connections per process, from the settings the process gets (tests/unit/k8s/test_production_settings
resolves its environment): a SQLAlchemy pool of SQI_DB_POOL_SIZE + SQI_DB_MAX_OVERFLOW to its
database host, plus one LISTEN connection (shared.listener) to the listen host for a worker (its
outbox relay) and for an API with SQI_LISTEN_DATABASE_URL. Through the PgBouncer Pooler a role
opens at most default_pool_size server connections per Pooler instance (+ reserve_pool_size).
Replicas: HPA maxReplicas, ScaledObject maxReplicaCount, else spec.replicas.
"""

from __future__ import annotations

import re
from collections import Counter

from shared.settings import CommonSettings

from .test_manifests import of_kind
from .test_production_settings import production_processes  # noqa: F401 (fixture)


def _user_and_host(url: str) -> tuple[str, str]:
    m = re.match(r"postgresql\+asyncpg://([^:@]+)(?::[^@]*)?@([^:/]+)", url)
    assert m, url
    return m.group(1), m.group(2).split(".")[0]


def connection_budget(docs: list[dict], processes) -> tuple[Counter, Counter]:
    """(connections to PostgreSQL per role, per host kind) at the ceilings."""
    ceilings = {
        h["spec"]["scaleTargetRef"]["name"]: h["spec"]["maxReplicas"] for h in of_kind(docs, "HorizontalPodAutoscaler")
    }
    ceilings |= {
        s["spec"]["scaleTargetRef"]["name"]: s["spec"]["maxReplicaCount"] for s in of_kind(docs, "ScaledObject")
    }
    deployments = {d["metadata"]["name"]: d for d in of_kind(docs, "Deployment")}
    (pooler,) = of_kind(docs, "Pooler")
    params = pooler["spec"]["pgbouncer"].get("parameters", {})
    per_role_pooled = pooler["spec"]["instances"] * (
        int(params.get("default_pool_size", 20)) + int(params.get("reserve_pool_size", 0))
    )
    defaults = CommonSettings.model_fields
    direct: Counter = Counter()
    pooled_roles: set[str] = set()
    for name, _, env in processes:
        if name not in deployments:
            continue  # the migration Job: one connection, once
        replicas = ceilings.get(name, deployments[name]["spec"].get("replicas", 1))
        pool = int(env.get("SQI_DB_POOL_SIZE", defaults["db_pool_size"].default)) + int(
            env.get("SQI_DB_MAX_OVERFLOW", defaults["db_max_overflow"].default)
        )
        role, host = _user_and_host(env["SQI_DATABASE_URL"])
        if host == pooler["metadata"]["name"]:
            pooled_roles.add(role)
        else:
            direct[role] += replicas * pool
        listen = env.get("SQI_LISTEN_DATABASE_URL") or (env["SQI_DATABASE_URL"] if name.endswith("-worker") else None)
        if listen:
            direct[_user_and_host(listen)[0]] += replicas
    per_role = Counter(direct)
    for role in pooled_roles:
        per_role[role] += per_role_pooled
    return per_role, direct


def test_connections_at_the_ceilings_fit_the_roles_and_the_server(rendered, production_processes):  # noqa: F811
    docs = rendered["production"]
    (cluster,) = of_kind(docs, "Cluster")
    limits = {r["name"]: r.get("connectionLimit", -1) for r in cluster["spec"]["managed"]["roles"]}
    max_connections = int(cluster["spec"]["postgresql"]["parameters"]["max_connections"])
    per_role, _ = connection_budget(docs, production_processes)
    over = [
        f"{role}: up to {n} connections, connectionLimit {limits[role]}"
        for role, n in sorted(per_role.items())
        if limits.get(role, -1) != -1 and n > limits[role]
    ]
    total = sum(per_role.values())
    if total > max_connections:
        over.append(f"all roles: up to {total} connections, max_connections {max_connections}")
    assert not over, "at the autoscalers' ceilings PostgreSQL refuses connections:\n" + "\n".join(over)
