"""The container and deployment files: linted, schema-checked, and consistent with the service."""

from __future__ import annotations

import fnmatch
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

from service.settings import Settings
from tests.support import ROOT

KUBERNETES = sorted((ROOT / "deploy" / "kubernetes").glob("*.yaml"))


def tool(name: str) -> str:
    """A checker from the test dependencies (pyproject's `test` extra)."""
    found = Path(sys.executable).with_name(name)
    path = str(found) if found.exists() else shutil.which(name)
    assert path, f"{name} is missing: pip install -e '.[test]' (./dev does)"
    return path


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)


def final_stage(dockerfile: str) -> list[str]:
    """The instructions of the last stage, continuation lines joined."""
    joined = re.sub(r"\\\n\s*", " ", dockerfile)
    lines = [line.strip() for line in joined.splitlines() if line.strip()]
    lines = [line for line in lines if not line.startswith("#")]
    last_from = max(i for i, line in enumerate(lines) if line.upper().startswith("FROM "))
    return lines[last_from:]


def test_the_dockerfile_is_clean_under_hadolint():
    result = run(tool("hadolint"), "--failure-threshold", "info", "Dockerfile")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""


def test_the_image_runs_service_serve_as_a_non_root_user_without_build_tools():
    stage = final_stage((ROOT / "Dockerfile").read_text())
    text = "\n".join(stage)
    assert 'ENTRYPOINT ["service"]' in stage and 'CMD ["serve"]' in stage  # exec form
    [user] = [line.split()[1] for line in stage if line.startswith("USER ")]
    assert user.isdigit() and int(user) != 0
    [healthcheck] = [line for line in stage if line.startswith("HEALTHCHECK ")]
    assert "/livez" in healthcheck and 'CMD ["' in healthcheck
    # The runtime stage copies the built environment; it installs and compiles nothing.
    for word in ("pip install", "apt-get", "gcc", "nodejs", "npm", "build-essential"):
        assert word not in text, word
    assert "COPY --from=build /opt/venv /opt/venv" in stage


def test_the_lock_file_pins_every_runtime_dependency_with_hashes():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lock = (ROOT / "requirements.lock").read_text()
    entries = re.findall(
        r"^([A-Za-z0-9_.\-\[\]]+)==(\S+)((?:\s*\\\n\s+--hash=sha256:\w+)+)", lock, re.M
    )
    pinned = {re.sub(r"[-_.]+", "-", name.split("[")[0]).lower(): v for name, v, _ in entries}
    # Every entry has hashes (pip --require-hashes refuses the file otherwise)...
    assert len(entries) == len(re.findall(r"^[A-Za-z0-9]", lock, re.M))
    # ...and every dependency of pyproject.toml is pinned at a version it allows.
    for dependency in project["dependencies"]:
        requirement = Requirement(dependency)
        name = re.sub(r"[-_.]+", "-", requirement.name).lower()
        assert name in pinned, f"{name} is not in requirements.lock: regenerate it (see its top)"
        assert requirement.specifier.contains(pinned[name], prereleases=True), (name, pinned[name])
    assert "--require-hashes --no-deps -r requirements.lock" in (ROOT / "Dockerfile").read_text()


def test_the_build_context_holds_everything_the_dockerfile_copies():
    rules = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]

    def ignored(path: str) -> bool:
        verdict = False
        for rule in rules:
            negate = rule.startswith("!")
            pattern = rule.lstrip("!").rstrip("/")
            parts = path.split("/")
            prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
            if any(fnmatch.fnmatch(p, pattern) for p in prefixes) or fnmatch.fnmatch(
                path, pattern.replace("**/", "*")
            ):
                verdict = not negate
        return verdict

    copies = re.findall(r"^COPY (?!--from)(.+) \S+$", (ROOT / "Dockerfile").read_text(), re.M)
    sources = [source for line in copies for source in line.split()]
    assert sources, "no COPY found"
    for source in sources:
        assert (ROOT / source).exists(), source
        assert not ignored(source), f"{source} is excluded by .dockerignore"
    assert ignored(".venv") and ignored(".git") and ignored("service/__pycache__")


def test_the_kubernetes_manifests_are_valid_for_the_api_server():
    result = run(tool("kubernetes-validate"), "--strict", *map(str, KUBERNETES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count(" passed ") == len(KUBERNETES) >= 4


def test_the_validator_catches_a_broken_manifest(tmp_path: Path):
    broken = (ROOT / "deploy/kubernetes/deployment.yaml").read_text()
    broken = broken.replace("readinessProbe:", "readinesProbe:")  # a typo
    (tmp_path / "deployment.yaml").write_text(broken)
    result = run(tool("kubernetes-validate"), "--strict", str(tmp_path / "deployment.yaml"))
    assert result.returncode != 0
    assert "readinesProbe" in result.stdout + result.stderr


def test_the_deployment_agrees_with_the_service_and_its_image():
    deployment = yaml.safe_load((ROOT / "deploy/kubernetes/deployment.yaml").read_text())
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    defaults = Settings(_env_file=None)  # type: ignore[call-arg]
    assert container["ports"][0]["containerPort"] == defaults.port
    assert container["startupProbe"]["httpGet"]["path"] == "/livez"
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    # The kubelet's grace period covers preStop and the service's own grace for requests.
    pre_stop = int(container["lifecycle"]["preStop"]["exec"]["command"][1])
    grace = float(env.get("SHUTDOWN_GRACE_SECONDS") or defaults.shutdown_grace_seconds)
    assert pod["terminationGracePeriodSeconds"] > pre_stop + grace
    # The user the image runs as; the root file system can stay read-only.
    stage = final_stage((ROOT / "Dockerfile").read_text())
    [user] = [line.split()[1] for line in stage if line.startswith("USER ")]
    assert pod["securityContext"]["runAsUser"] == int(user)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]  # --workers' metrics
    job = yaml.safe_load((ROOT / "deploy/kubernetes/migrate-job.yaml").read_text())
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["migrate"]


def test_the_compose_file_is_valid_compose_and_routes_through_pgbouncer():
    result = run(
        tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", "deploy/compose.yaml"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    compose = yaml.safe_load((ROOT / "deploy/compose.yaml").read_text())
    env = compose["services"]["service"]["environment"]
    assert "@pgbouncer:" in env["DATABASE_URL"] and env["DATABASE_POOLER"] == "pgbouncer"
    assert "@postgres:" in env["MIGRATION_DATABASE_URL"]
    assert compose["services"]["pgbouncer"]["environment"]["POOL_MODE"] == "transaction"
    for name in env:
        assert name.lower() in Settings.model_fields or name == "ENVIRONMENT", name


@pytest.mark.parametrize("path", KUBERNETES, ids=lambda p: p.name)
def test_every_setting_the_manifests_set_is_one_the_service_reads(path: Path):
    for document in yaml.safe_load_all(path.read_text()):
        pod = document.get("spec", {}).get("template", {}).get("spec", {})
        for container in pod.get("containers", []):
            for entry in container.get("env", []):
                assert entry["name"].lower() in Settings.model_fields, entry["name"]
