"""The container image, built with Debian's buildah and run: serves, as its non-root user, stops.

Building takes 2-4 minutes (network: PyPI, npm, Debian), so it runs when SERVICE_IMAGE_TEST=1:
.ci/run sets it (and installs buildah and debootstrap).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from service.db.url import DatabaseURL
from tests.orchestration.service_process import free_port
from tests.support import ROOT

TAG = "localhost/service:image-test"
ENV = {"STORAGE_DRIVER": "vfs", "BUILDAH_ISOLATION": "chroot"}

pytestmark = pytest.mark.skipif(
    os.environ.get("SERVICE_IMAGE_TEST") != "1",
    reason="builds the image with buildah (root, 2-4 min): set SERVICE_IMAGE_TEST=1 (.ci/run does)",
)


def buildah(*args: str, timeout: float = 120) -> str:
    result = subprocess.run(
        ["buildah", *args],
        env={**os.environ, **ENV},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.fixture(scope="module")
def image() -> Iterator[dict[str, object]]:
    assert os.geteuid() == 0 and shutil.which("buildah") and shutil.which("debootstrap"), (
        "needs root, buildah and debootstrap (apt-get install buildah debootstrap)"
    )
    started = time.monotonic()
    build = subprocess.run(
        [str(ROOT / "deploy" / "build-image.sh"), TAG],
        env={**os.environ, **ENV, "PYTHON_IMAGE": os.environ.get("PYTHON_IMAGE", "debian")},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    print(f"image built in {time.monotonic() - started:.0f} s")
    config = json.loads(buildah("inspect", "--type", "image", TAG))["Docker"]["config"]
    try:
        yield config
    finally:
        buildah("rmi", TAG)


def _descendants(pid: int) -> list[int]:
    children = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:  # a helper process that ended since it was listed
        return b""


def _uid(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError("no Uid line")


def test_the_image_serves_as_a_non_root_user_and_stops_cleanly_on_sigterm(
    image: dict[str, object], database: DatabaseURL
):
    assert image["Entrypoint"] == ["service"] and image["Cmd"] == ["serve"]
    assert image["User"] == "10001"
    assert "/livez" in " ".join(image.get("Healthcheck", {}).get("Test", []))  # type: ignore[union-attr]
    port = free_port()
    container = buildah("from", TAG)
    try:
        for key, value in {
            "DATABASE_URL": database.sqlalchemy,
            "JWT_SECRET": "image-test-secret-0123456789abcdef0123456789",
            "HOST": "127.0.0.1",
            "PORT": str(port),
        }.items():
            buildah("config", "--env", f"{key}={value}", container)
        command = [*image["Entrypoint"], *image["Cmd"]]  # type: ignore[misc]
        run = subprocess.Popen(
            ["buildah", "run", "--network", "host", container, "--", *command],
            env={**os.environ, **ENV},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert run.poll() is None, run.stdout.read() if run.stdout else ""
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the container did not get ready"
            time.sleep(0.2)
        answer = httpx.post(f"{base}/graphql", json={"query": "{ posts { totalCount } }"})
        assert answer.json() == {"data": {"posts": {"totalCount": 0}}}
        [served] = [
            pid
            for pid in _descendants(run.pid)
            # the Python process itself, under buildah's chroot helper processes
            if _cmdline(pid).startswith(b"/opt/venv/bin/python")
        ]
        assert _uid(served) == 10001
        os.kill(served, signal.SIGTERM)  # the container's main process, as a runtime sends it
        output, _ = run.communicate(timeout=60)
    finally:
        buildah("rm", container)
    assert run.returncode == 0, output
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    messages = [line["message"] for line in lines]  # production: JSON logs
    assert "database pool closed" in messages
    assert not [line for line in lines if line["level"] in ("error", "critical")]
