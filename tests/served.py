"""`service serve` as a developer runs it: a subprocess on a free port, ready at /readyz 200."""

from __future__ import annotations

import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from service.db.url import DatabaseURL
from tests.support import ROOT, SERVICE, service_env


class ServeFailed(AssertionError):
    pass


@contextmanager
def served(url: DatabaseURL, timeout: float = 60, **env: str) -> Iterator[str]:
    """Runs `service serve` on `url` with extra environment `env`; yields its base URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            [*SERVICE, "serve", "--port", str(port)],
            cwd=ROOT,
            env=service_env(DATABASE_URL=url.sqlalchemy, **env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

        def output() -> str:
            log.seek(0)
            return log.read().decode(errors="replace")

        try:
            deadline = time.monotonic() + timeout
            while True:
                if process.poll() is not None:
                    raise ServeFailed(f"`service serve` exited:\n{output()}")
                try:
                    if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise ServeFailed(f"`service serve` did not become ready:\n{output()}")
                time.sleep(0.1)
            try:
                yield base
            except BaseException as error:
                error.add_note(f"--- service log ---\n{output()}")
                raise
        finally:
            if process.poll() is None:
                process.terminate()
                process.wait(30)
