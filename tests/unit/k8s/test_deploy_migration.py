"""The migration Job can run to completion in production, in the order deploy.sh uses.

``python -m sqi_cli migrate`` does more than the settings check of test_production_settings: after
the schemas and the topology it seeds the reference data through ingest's composition root
(``sqi_cli.migrate.seed_reference`` -> ``services.ingest.seed.reference_app()``), which must not
need ``SQI_RATING_CODE_KEYS``: the Job is given no rating-code key. These tests run that start-up code from the
Job's rendered production environment, and check what deploy.sh applies before the Job.
"""

from __future__ import annotations

from .conftest import K8S
from .test_manifests import of_kind, pod_labels, pod_spec, selector_matches
from .test_production_settings import production_processes, run_in  # noqa: F401 (fixture)

# What sqi_cli.migrate.migrate() builds before its first network call, step by step.
MIGRATE_STARTUP = r"""
from shared.settings import CommonSettings
settings = CommonSettings()
from sqi_cli.migrate import migration_dirs, subscriptions
migration_dirs(); subscriptions()
# seed_reference(settings): ingest's composition root, as the Job runs it
from services.ingest.seed import reference_app
reference_app()
print("migrate would start")
"""


def test_the_migration_job_can_seed_the_reference_data_in_production(production_processes):  # noqa: F811
    (env,) = [env for name, _, env in production_processes if name == "sqi-migrate"]
    result = run_in(env, MIGRATE_STARTUP)
    assert result.returncode == 0 and "migrate would start" in result.stdout, (
        "sqi-migrate fails in production after migrating (seed_reference):\n" + result.stderr[-800:]
    )


def _phase(doc: dict) -> str | None:
    return doc["metadata"].get("labels", {}).get("sqi.gov.vn/deploy-phase")


def test_deploy_sh_does_not_apply_the_migration_job_in_the_pre_deploy_phase(rendered):
    """deploy.sh applies `-l sqi.gov.vn/deploy-phase=pre-deploy` first, then the data tier, then
    deletes the old Job and applies it. A Job carrying the pre-deploy label is applied in step 1:
    with a new image it collides with last release's Job (spec.template is immutable, kept a
    week by ttlSecondsAfterFinished) and `set -e` aborts the roll-out; on a first install it
    starts before PostgreSQL and RabbitMQ exist, and is deleted mid-run in step 3."""
    for overlay, docs in rendered.items():
        (job,) = of_kind(docs, "Job")
        assert _phase(job) is None, f"{overlay}: Job sqi-migrate has deploy-phase={_phase(job)}"


def test_the_policies_the_migration_job_needs_are_applied_before_it(rendered):
    """Under default-deny-all (pre-deploy), the Job reaches PostgreSQL, RabbitMQ and DNS only
    through egress policies that deploy.sh has applied before step 3 (phases pre-deploy, data)."""
    docs = rendered["production"]
    script = (K8S / "deploy.sh").read_text()
    assert script.index("deploy-phase=pre-deploy") < script.index("app.kubernetes.io/name=sqi-migrate")
    (job,) = of_kind(docs, "Job")
    labels = pod_labels(job)
    needed = {"allow-dns-egress", "allow-postgres-egress", "allow-rabbitmq-egress"}
    policies = {p["metadata"]["name"]: p for p in of_kind(docs, "NetworkPolicy")}
    for name in sorted(needed):
        policy = policies[name]
        assert selector_matches(policy["spec"]["podSelector"], labels), name
        assert _phase(policy) in ("pre-deploy", "data"), (
            f"NetworkPolicy {name} is applied only after the migration Job (deploy-phase={_phase(policy)})"
        )
        assert policy["metadata"].get("annotations", {}).get("argocd.argoproj.io/sync-wave") == "-2", (
            f"NetworkPolicy {name}: Argo CD syncs it in wave 0, after the Job's hook (wave -1)"
        )
    # the migration Job's pod spec is what the policies select
    assert pod_spec(job)["containers"][0]["command"][-1] == "migrate"
