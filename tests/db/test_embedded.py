"""The embedded PostgreSQL: starts, keeps data, one server per folder, never outlives its parent."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from service.db.embedded import EmbeddedPostgres, EmbeddedPostgresError


@pytest.fixture(scope="module")
def data_dir() -> Iterator[Path]:
    """One cluster for the module (one initdb); each test starts and stops it in turn."""
    # Not tmp_path: pytest's folders are mode 700, and as root the server runs as another user
    # who must traverse the data folder's parent. /tmp is world-traversable.
    base = Path(tempfile.mkdtemp(prefix="test-embedded-pg-"))
    base.chmod(0o755)  # the one folder just created
    try:
        yield base / "pg"
    finally:
        shutil.rmtree(base)  # only the folder created above


def _alive(pid: int) -> bool:
    """Running, and not a zombie (an orphan's exit may wait for a lazy reaper)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):  # gone, or going while it was read
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _server_pids(server: EmbeddedPostgres) -> list[int]:
    process = server._process
    assert process is not None
    return [process.pid, *_children(process.pid)]


def _wait_gone(pids: list[int], seconds: float) -> list[int]:
    deadline = time.monotonic() + seconds
    while (left := [pid for pid in pids if _alive(pid)]) and time.monotonic() < deadline:
        time.sleep(0.02)
    return left


async def _fetchval(server: EmbeddedPostgres, query: str) -> object:
    connection = await asyncpg.connect(
        host="127.0.0.1", port=server.port, user="postgres", database=server.database
    )
    try:
        return await connection.fetchval(query)
    finally:
        await connection.close()


async def test_starts_answers_and_stops_without_leftovers(data_dir: Path) -> None:
    server = EmbeddedPostgres(data_dir, fast_unsafe=True)
    server.start()
    try:
        assert server.url() == f"postgresql+asyncpg://postgres@127.0.0.1:{server.port}/service"
        assert server.url("other").endswith(f":{server.port}/other")
        assert await _fetchval(server, "SELECT 1") == 1
        assert await _fetchval(server, "SELECT current_database()") == "service"
        assert await _fetchval(server, "SHOW fsync") == "off"
        assert await _fetchval(server, "SHOW listen_addresses") == "127.0.0.1"
        pids = _server_pids(server)
        assert len(pids) > 1  # the postmaster and its background processes
    finally:
        server.stop()
    assert _wait_gone(pids, 0) == []
    assert not (data_dir / "postmaster.pid").exists()
    server.stop()  # a second stop is harmless


async def test_restart_keeps_data(data_dir: Path) -> None:
    with EmbeddedPostgres(data_dir, fast_unsafe=True) as server:
        await _fetchval(server, "CREATE TABLE IF NOT EXISTS kept (v text)")
        await _fetchval(server, "INSERT INTO kept VALUES ('still here')")
    with EmbeddedPostgres(data_dir, fast_unsafe=True) as server:
        assert await _fetchval(server, "SELECT v FROM kept") == "still here"


def test_second_server_on_same_folder_is_refused(data_dir: Path) -> None:
    with EmbeddedPostgres(data_dir, fast_unsafe=True) as first:
        pid = _server_pids(first)[0]
        with pytest.raises(EmbeddedPostgresError) as refused:
            EmbeddedPostgres(data_dir, fast_unsafe=True).start()
        message = str(refused.value)
        assert "\n" not in message
        assert f"data folder {data_dir} is already in use by another running server" in message
        assert f"(pid {pid})" in message
        assert _alive(pid)  # the refused start did not touch the running server


def test_taken_port_is_a_clear_error(data_dir: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = EmbeddedPostgres(data_dir, port=port, fast_unsafe=True)
        with pytest.raises(EmbeddedPostgresError, match=f"port {port} on 127.0.0.1 is already in"):
            server.start()
    assert server._process is None
    assert not (data_dir / "postmaster.pid").exists()


_CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from service.db.embedded import EmbeddedPostgres

    server = EmbeddedPostgres(Path(sys.argv[1]), fast_unsafe=True)
    server.start()
    print(server._process.pid, flush=True)
    time.sleep(60)
    """
)


def test_server_dies_with_its_parent_even_on_sigkill(data_dir: Path) -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(data_dir)], stdout=subprocess.PIPE, text=True
    )
    pids: list[int] = []
    try:
        assert parent.stdout is not None
        line = parent.stdout.readline()
        assert line.strip().isdigit(), f"the child did not start the server: {line!r}"
        postmaster = int(line)
        pids = [postmaster, *_children(postmaster)]
        assert _alive(postmaster)

        # Across processes too, a second server on the folder is refused.
        with pytest.raises(
            EmbeddedPostgresError, match=f"already in use .* \\(pid {postmaster}\\)"
        ):
            EmbeddedPostgres(data_dir, fast_unsafe=True).start()

        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        assert _wait_gone(pids, 5) == [], "postgres outlived its SIGKILLed parent"
        # The parent-death signal is a fast shutdown, not a crash: the lock file is gone.
        assert not (data_dir / "postmaster.pid").exists()
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        for pid in pids:  # only the server our child reported, if the test failed
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
