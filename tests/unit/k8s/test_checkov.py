"""checkov passes on both rendered overlays, with every waiver written down with its reason.

checkov pins many libraries that would fight the application's, so it lives in a tool virtual
environment of its own (``.sqi/tools/checkov-<version>``, git-ignored), created on first use with
``uv`` (a dev dependency, so it is in the project's own ``.venv``) from PyPI. The test is
skipped, saying why, only when that environment cannot be created
(no network to the package index and no earlier copy).
"""

from __future__ import annotations

import fcntl
import json
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest
import yaml

from .conftest import K8S, OVERLAYS, REPO

CHECKOV_VERSION = "3.3.30"
TOOL_DIR = REPO / ".sqi" / "tools" / f"checkov-{CHECKOV_VERSION}"
WAIVERS = K8S / "checkov-waivers.yaml"


def checkov_executable() -> Path:
    executable = TOOL_DIR / "bin" / "checkov"
    if executable.exists():
        return executable
    beside = Path(sys.executable).parent / "uv"
    uv = str(beside) if beside.exists() else shutil.which("uv")
    if uv is None:
        pytest.skip("checkov needs its tool venv and `uv` is not installed to create it")
    TOOL_DIR.parent.mkdir(parents=True, exist_ok=True)
    with (TOOL_DIR.parent / ".lock").open("w") as lock:  # parallel test runs create it once
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not executable.exists():
            steps = (
                [uv, "venv", "-q", "-p", "3.11", str(TOOL_DIR)],
                [
                    uv,
                    "pip",
                    "install",
                    "-q",
                    "--python",
                    str(TOOL_DIR / "bin" / "python"),
                    f"checkov=={CHECKOV_VERSION}",
                ],
            )
            for step in steps:
                proc = subprocess.run(step, capture_output=True, text=True, timeout=600, check=False)
                if proc.returncode != 0:
                    shutil.rmtree(TOOL_DIR, ignore_errors=True)
                    pytest.skip(f"cannot install checkov {CHECKOV_VERSION} into {TOOL_DIR}: {proc.stderr[-500:]}")
    return executable


@pytest.fixture(scope="module")
def findings(tmp_path_factory) -> dict[str, set[str]]:
    """check id -> the resources that fail it, over both overlays."""
    import tests.unit.k8s.conftest as k8s

    folder = tmp_path_factory.mktemp("rendered")
    for name in OVERLAYS:
        (folder / f"{name}.yaml").write_text(yaml.safe_dump_all(k8s.render(K8S / "overlays" / name)))
    proc = subprocess.run(
        [str(checkov_executable()), "-d", str(folder), "--framework", "kubernetes", "--quiet", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    reports = json.loads(proc.stdout)
    failed: dict[str, set[str]] = defaultdict(set)
    for report in reports if isinstance(reports, list) else [reports]:
        assert report["summary"]["parsing_errors"] == 0, report["summary"]
        assert report["summary"]["resource_count"] > 50, "checkov read almost nothing"
        for check in report["results"]["failed_checks"]:
            failed[check["check_id"]].add(f"{Path(check['file_path']).stem}: {check['resource']}")
    return failed


def waivers() -> dict[str, str]:
    entries = yaml.safe_load(WAIVERS.read_text())
    return {e["check"]: e["reason"] for e in entries}


def test_every_waiver_has_a_reason():
    for check, reason in waivers().items():
        assert len(reason.split()) >= 15, f"{check}: say why it is waived"


def test_checkov_passes_with_the_written_waivers(findings):
    unwaived = {check: sorted(where) for check, where in findings.items() if check not in waivers()}
    assert not unwaived, "checkov findings without a waiver in k8s/checkov-waivers.yaml:\n" + json.dumps(
        unwaived, indent=1
    )


def test_no_waiver_is_stale(findings):
    stale = set(waivers()) - set(findings)
    assert not stale, f"waivers that match no finding any more, remove them: {stale}"
