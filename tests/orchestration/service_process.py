"""`service serve` as an orchestrator runs it: a subprocess on a free port, its log collected."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from tests.support import ROOT, SERVICE, service_env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServiceProcess:
    """One `service serve` process. Its output (stdout and stderr) is read as it comes."""

    def __init__(self, *args: str, cwd: Path = ROOT, port: int | None = None, **env: str) -> None:
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [*SERVICE, "serve", "--port", str(self.port), *args],
            cwd=cwd,
            env=service_env(**env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    @property
    def pid(self) -> int:
        return self.process.pid

    def get(self, path: str, timeout: float = 2) -> httpx.Response:
        return httpx.get(self.base + path, timeout=timeout)

    def post(
        self, query: str, variables: dict[str, Any] | None = None, **kw: Any
    ) -> httpx.Response:
        return httpx.post(
            self.base + "/graphql",
            json={"query": query, "variables": variables},
            timeout=kw.pop("timeout", 10),
            **kw,
        )

    def wait_listening(self, timeout: float = 30) -> None:
        self._wait(lambda: self.get("/livez").status_code == 200, timeout, "listening")

    def wait_ready(self, timeout: float = 30) -> None:
        self._wait(lambda: self.get("/readyz").status_code == 200, timeout, "ready")

    def wait_line(self, text: str, timeout: float = 30) -> str:
        def found() -> bool:
            return any(text in line for line in self.lines)

        self._wait(found, timeout, f"a log line with {text!r}", http=False)
        return next(line for line in self.lines if text in line)

    def _wait(self, check: Any, timeout: float, what: str, http: bool = True) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self._reader.join(5)
                raise AssertionError(f"service exited ({self.process.returncode}):\n{self.output}")
            try:
                if check():
                    return
            except httpx.TransportError:
                if not http:
                    raise
            time.sleep(0.05)
        raise AssertionError(f"service not {what} after {timeout} s:\n{self.output}")

    def wait_exit(self, timeout: float = 30) -> int:
        code = self.process.wait(timeout)
        self._reader.join(5)
        return code

    def signal(self, sig: int = signal.SIGTERM) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM, then wait; SIGKILL the process group (our own child's) if it hangs."""
        self.signal(signal.SIGTERM)
        try:
            return self.wait_exit(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
            raise

    def __enter__(self) -> ServiceProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.stop()


def problems(output: str) -> list[str]:
    """Log lines an operator would have to look at: errors, tracebacks (text or JSON logs)."""
    return [
        line
        for line in output.splitlines()
        if " ERROR " in line
        or " CRITICAL " in line
        or "Traceback" in line
        or '"level":"error"' in line
        or '"level":"critical"' in line
    ]
