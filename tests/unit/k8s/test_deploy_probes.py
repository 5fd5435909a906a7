"""What the gateway's readiness probe depends on.

The gateway is the only public entry: when its pods are not ready the Service has no endpoints and
ingress-nginx answers 503 to every path. Its /readyz must therefore fail only for what the gateway
itself cannot serve without — not for the broker (the gateway never publishes: its broker user
has no rights at all; the services' outboxes exist so that a broker outage refuses no event), nor
for one service API being down (the routes to the others, POST /api/v1/events among them, keep
working). The checks also run one after the other with 3 s timeouts each, longer than the
probe's timeoutSeconds. (``GET /readyz`` of the gateway as "the whole platform is up" is what
``./sqi up`` promises, cli.md: keep it, and probe the pod on a path about the gateway alone.)
"""

from __future__ import annotations

import json

from .test_manifests import by_name, pod_spec
from .test_production_settings import production_processes, run_in  # noqa: F401 (fixture)

READY_CHECKS = r"""
import json, sys
from gateway.app import create_app
app = create_app()
(route,) = [r for r in app.routes if getattr(r, "path", None) == sys.argv[1]]
names = route.endpoint.__code__.co_freevars
cells = dict(zip(names, (c.cell_contents for c in route.endpoint.__closure__ or ())))
print("checks " + json.dumps(sorted(cells.get("checks", {}))))
"""


def gateway_ready_checks(env: dict[str, str], path: str) -> list[str]:
    """The dependencies the gateway's handler of ``path`` checks (its shared.web ``checks``)."""
    result = run_in(env, READY_CHECKS, path)
    assert result.returncode == 0, result.stderr[-1500:]
    line = next(x for x in result.stdout.splitlines() if x.startswith("checks "))
    return json.loads(line.removeprefix("checks "))


def test_the_gateway_readiness_does_not_depend_on_the_broker_or_one_service(rendered, production_processes):  # noqa: F811
    (env,) = [env for name, _, env in production_processes if name == "gateway"]
    probe = pod_spec(by_name(rendered["production"], "Deployment")["gateway"])["containers"][0]["readinessProbe"]
    checks = gateway_ready_checks(env, probe["httpGet"]["path"])
    cascading = sorted(set(checks) - {"database"})
    assert not cascading, (
        f"the gateway's readinessProbe ({probe['httpGet']['path']}, timeout {probe['timeoutSeconds']} s) "
        f"fails when any of "
        f"{cascading} fails: every gateway pod leaves the Service and the whole public API answers 503"
    )
