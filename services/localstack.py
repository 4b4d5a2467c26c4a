"""A single-node Apache Kafka broker (KRaft, combined broker + controller) for
development, the demo and the integration tests.

The broker comes from the official jars on Maven Central (``org.apache.kafka:kafka_2.13``
and its runtime dependencies, plus a log4j2 SLF4J binding), resolved once with Maven into a
cache outside the repository, and runs on the machine's Java with a bounded heap. It is
configured so that transactions work on one node (replication factor 1 and min ISR 1 for
the transaction state log and offsets topic). ``secure=True`` adds SASL/SCRAM, ACLs and a
super user ``admin`` (:mod:`services.security.local`); a state dir once secure stays so.

Errors::

    LocalStackError
    ├── MissingToolError     java or mvn is not installed
    └── BrokerError          the broker failed to resolve, format, start or stop
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from services.private import private_dir
from services.security._errors import KafkaSecurityError
from services.security.local import (
    AdminCredentials,
    check_running_mode,
    credentials_for_start,
    ensure_admin_user,
    load_credentials,
    secure_settings,
    write_private,
)

__all__ = [
    "BrokerError",
    "BrokerStatus",
    "LocalBroker",
    "LocalStackError",
    "MissingToolError",
    "free_port",
    "jars_ready",
    "resolve_jars",
    "wait_gone",
]

POM = Path(__file__).resolve().parents[1] / "scripts" / "kafka-pom.xml"
# Kafka's own log4j2 version per minor release: the SLF4J 1.x binding must match it.
LOG4J_FOR_KAFKA = {"4.0": "2.24.3", "4.1": "2.24.3", "4.2": "2.25.1", "4.3": "2.25.1"}
USE_EXISTING = "or set MODELSTREAM_KAFKA=host:port to use an existing Kafka cluster"
T = TypeVar("T")


class LocalStackError(Exception):
    """Root of the local stack's errors."""


class MissingToolError(LocalStackError):
    """A tool the local broker needs (java, mvn) is not installed."""


class BrokerError(LocalStackError):
    """The broker could not be resolved, formatted, started or stopped."""


def _require(tool: str, install_hint: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise MissingToolError(f"'{tool}' was not found on PATH: {install_hint}, {USE_EXISTING}.")
    return path


def _libs(version: str, cache_dir: Path) -> Path:
    return cache_dir / f"kafka-{version}" / "libs"


def jars_ready(version: str, cache_dir: Path) -> bool:
    """Whether the jars of Kafka ``version`` are resolved already (a call is instant)."""
    return (_libs(version, cache_dir) / ".complete").exists()


def resolve_jars(
    version: str,
    cache_dir: Path,
    *,
    quiet: bool = True,
    on_download: Callable[[int], None] | None = None,
) -> Path:
    """Resolve the broker classpath for Kafka ``version`` into ``cache_dir``; idempotent.

    Returns the directory holding the jars. A marker file makes a warm call instant.
    ``on_download(n)``: called as Maven reports each file it downloaded (n so far), for
    a progress display; Maven's output is read line by line then.
    """
    libs = _libs(version, cache_dir)
    marker = libs / ".complete"
    if marker.exists():
        return libs
    mvn = _require("mvn", "install Maven (Debian: apt-get install maven)")
    log4j = LOG4J_FOR_KAFKA.get(".".join(version.split(".")[:2]), "2.24.3")
    staging = libs.with_name("libs.partial")
    shutil.rmtree(staging, ignore_errors=True)
    cmd = [
        mvn, "-B", "-f", str(POM), "dependency:copy-dependencies", "-DincludeScope=runtime",
        f"-DoutputDirectory={staging}", f"-Dkafka.version={version}", f"-Dlog4j.version={log4j}",
    ]  # fmt: skip
    if on_download is not None:
        returncode, tail = _run_counting(cmd, on_download)
    else:
        if quiet:
            cmd.insert(1, "-q")
        done = subprocess.run(cmd, capture_output=quiet, text=True, check=False)
        returncode, tail = (
            done.returncode,
            (done.stdout or "")[-2000:] + (done.stderr or "")[-2000:],
        )
    if returncode != 0:
        raise BrokerError(
            f"Maven could not resolve Apache Kafka {version} from Maven Central "
            f"(exit {returncode}). Check network access to Maven Central, "
            f"{USE_EXISTING}.\n{tail}"
        )
    shutil.rmtree(libs, ignore_errors=True)
    staging.rename(libs)
    marker.write_text(version)
    return libs


def _run_counting(cmd: list[str], on_download: Callable[[int], None]) -> tuple[int, str]:
    """Run Maven, calling ``on_download`` per "Downloaded from" line; (exit code, the
    output's last 4000 characters)."""
    downloaded, tail = 0, ""
    with subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        text=True,
    ) as maven:  # fmt: skip
        assert maven.stdout is not None  # stdout=PIPE
        for line in maven.stdout:
            tail = (tail + line)[-4000:]
            if is_download(line):
                downloaded += 1
                on_download(downloaded)
    return maven.returncode, tail


def is_download(line: str) -> bool:
    """Whether a line of Maven's batch-mode output reports a downloaded file.

    >>> is_download("[INFO] Downloaded from central: https://repo.maven.apache.org/"
    ...             "maven2/org/apache/kafka/kafka_2.13/4.1.1/kafka_2.13-4.1.1.jar (6.6 MB)")
    True
    >>> is_download("[INFO] Downloading from central: https://repo.maven.apache.org/x.jar")
    False
    """
    return line.removeprefix("[INFO] ").startswith("Downloaded from ")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _reusable(port: object) -> int:
    """``port`` when it is a port number nobody listens on, else a fresh free port."""
    if isinstance(port, int) and not _port_open(port):
        return port
    return free_port()


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


@dataclass(frozen=True)
class BrokerStatus:
    """What ``modelstream kafka status`` reports."""

    running: bool
    pid: int | None
    bootstrap: str | None
    state_dir: Path
    secure: bool = False


LOG4J2 = """\
status = warn
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = ${sys:kafka.logs.dir}/server.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
logger.state.name = state.change.logger
logger.state.level = WARN
"""


def _server_properties(
    state_dir: Path, port: int, controller_port: int, admin: AdminCredentials | None = None
) -> str:
    settings = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@127.0.0.1:{controller_port}",
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str((state_dir / "data").absolute()),
        "num.partitions": "3",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "10",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": "10",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        "auto.create.topics.enable": "false",
        "message.max.bytes": str(8 * 1024 * 1024),
        "log.segment.bytes": str(64 * 1024 * 1024),
    }
    if admin is not None:
        settings |= secure_settings(port, controller_port, admin)
    return "".join(f"{key}={value}\n" for key, value in settings.items())


class LocalBroker:
    """One local broker whose config, data, logs and pid live in ``state_dir``.

    ``start`` is idempotent: a broker already running from this directory is reused.
    ``secure``: SASL/SCRAM and ACLs; :meth:`admin_credentials` is its super user.
    """

    def __init__(
        self,
        state_dir: Path,
        libs: Path,
        *,
        port: int | None = None,
        controller_port: int | None = None,
        heap_mb: int = 512,
        secure: bool = False,
    ) -> None:
        self.state_dir = state_dir.absolute()
        self.secure = secure
        self.libs = libs
        self._port = port
        self._controller_port = controller_port
        self.heap_mb = heap_mb

    @property
    def _state_file(self) -> Path:
        return self.state_dir / "broker.json"

    @property
    def log_file(self) -> Path:
        return self.state_dir / "logs" / "server.log"

    def _read_state(self) -> dict[str, object] | None:
        try:
            state: dict[str, object] = json.loads(self._state_file.read_text())
        except (OSError, ValueError):
            return None
        return state

    def status(self) -> BrokerStatus:
        state = self._read_state()
        pid = state.get("pid") if state else None
        if state is None or not isinstance(pid, int) or not self._is_our_broker(pid):
            return BrokerStatus(False, None, None, self.state_dir)
        secure = state.get("secure") is True
        return BrokerStatus(True, pid, str(state["bootstrap"]), self.state_dir, secure)

    def _is_our_broker(self, pid: int) -> bool:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return False
        return b"kafka.Kafka" in cmdline and str(self.state_dir).encode() in cmdline

    def start(self, timeout: float = 90.0) -> str:
        """Start the broker (or find it running) and return its bootstrap address."""
        current = self.status()
        if current.running and current.bootstrap:
            _translated(lambda: check_running_mode(self.state_dir, self.secure, current.secure))
            return current.bootstrap
        java = _require("java", "install Java 17+ (Debian: apt-get install openjdk-17-jre)")
        admin = _translated(lambda: credentials_for_start(self.state_dir, secure=self.secure))
        port, controller_port = self._choose_ports()
        props = self._write_config(port, controller_port, admin)
        self._format(java, props)
        started = time.monotonic()
        process = self._spawn(java, props)
        bootstrap = f"127.0.0.1:{port}"
        state = {"pid": process.pid, "port": port, "bootstrap": bootstrap, "secure": bool(admin)}
        self._state_file.write_text(json.dumps(state))
        self._wait_ready(process, port, timeout)
        if admin is not None:
            self._secure_admin(bootstrap, admin, timeout - (time.monotonic() - started))
        return bootstrap

    def admin_credentials(self) -> AdminCredentials | None:
        """The secure broker's super user (None for a broker without security)."""
        return _translated(lambda: load_credentials(self.state_dir))

    def _secure_admin(self, bootstrap: str, admin: AdminCredentials, timeout: float) -> None:
        try:
            ensure_admin_user(bootstrap, admin, max(timeout, 10.0))
        except KafkaSecurityError as exc:
            self.stop()
            raise BrokerError(f"{exc}; last log lines:\n{self._log_tail()}") from exc

    def _choose_ports(self) -> tuple[int, int]:
        """Given ports, else the ones this directory used last (clients keep working
        across a restart), else fresh free ones."""
        ports_file = self.state_dir / "ports.json"
        try:
            last = json.loads(ports_file.read_text())
        except (OSError, ValueError):
            last = {}
        port = self._port or _reusable(last.get("port"))
        controller = self._controller_port or _reusable(last.get("controller_port"))
        private_dir(self.state_dir)
        ports_file.write_text(json.dumps({"port": port, "controller_port": controller}))
        return port, controller

    def _write_config(self, port: int, controller: int, admin: AdminCredentials | None) -> Path:
        private_dir(self.state_dir / "logs")  # and the state dir: secrets, SCRAM in data/
        props = self.state_dir / "server.properties"
        write_private(props, _server_properties(self.state_dir, port, controller, admin))
        (self.state_dir / "log4j2.properties").write_text(LOG4J2)
        return props

    def _classpath(self) -> str:
        return f"{self.libs}/*"

    def _format(self, java: str, props: Path) -> None:
        cluster_file = self.state_dir / "cluster.id"
        if not cluster_file.exists():
            cluster_file.write_text(self._run_tool(java, ["random-uuid"]).strip())
        cluster_id = cluster_file.read_text().strip()
        self._run_tool(java, ["format", "-t", cluster_id, "-c", str(props), "--ignore-formatted"])

    def _run_tool(self, java: str, args: list[str]) -> str:
        cmd = [java, "-cp", self._classpath(), "kafka.tools.StorageTool", *args]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise BrokerError(
                f"kafka StorageTool {args[0]} failed (exit {done.returncode}): "
                f"{done.stderr.strip()[-1500:]}\nIf the data dir was formatted by another "
                f"cluster, remove {self.state_dir} and start again."
            )
        return done.stdout

    def _spawn(self, java: str, props: Path) -> subprocess.Popen[bytes]:
        cmd = [
            java, f"-Xms{min(256, self.heap_mb)}m", f"-Xmx{self.heap_mb}m", "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20", "-XX:+ExplicitGCInvokesConcurrent",
            "-Djava.awt.headless=true", f"-Dkafka.logs.dir={self.state_dir / 'logs'}",
            f"-Dlog4j2.configurationFile={self.state_dir / 'log4j2.properties'}",
            "-cp", self._classpath(), "kafka.Kafka", str(props),
        ]  # fmt: skip
        out = (self.state_dir / "logs" / "stdout.log").open("ab")
        with out:
            return subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, cwd=self.state_dir,
            )  # fmt: skip

    def _wait_ready(self, process: subprocess.Popen[bytes], port: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise BrokerError(
                    f"the broker exited with code {process.returncode} before it was ready; "
                    f"last log lines:\n{self._log_tail()}"
                )
            if _port_open(port):
                return
            time.sleep(0.05)
        self.stop()
        raise BrokerError(
            f"the broker did not accept connections on 127.0.0.1:{port} within "
            f"{timeout:.0f}s; last log lines:\n{self._log_tail()}"
        )

    def _log_tail(self, lines: int = 30) -> str:
        for path in (self.log_file, self.state_dir / "logs" / "stdout.log"):
            if path.exists() and path.stat().st_size:
                return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
        return "(no log output)"

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop the broker cleanly (SIGTERM, then SIGKILL after ``timeout``).

        Returns whether a broker was running.
        """
        current = self.status()
        if not current.running or current.pid is None:
            self._state_file.unlink(missing_ok=True)
            return False
        os.kill(current.pid, signal.SIGTERM)
        if not wait_gone(current.pid, timeout):
            os.kill(current.pid, signal.SIGKILL)
            wait_gone(current.pid, 5.0)
        self._state_file.unlink(missing_ok=True)
        return True


def _translated(call: Callable[[], T]) -> T:
    """``call()``, its security errors as BrokerError (same message)."""
    try:
        return call()
    except KafkaSecurityError as exc:
        raise BrokerError(str(exc)) from exc


def wait_gone(pid: int, timeout: float) -> bool:
    """Whether process ``pid`` ended (or is a zombie) within ``timeout``; reaps our children."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # reap it when it is our child
        if not Path(f"/proc/{pid}").exists() or _is_zombie(pid):
            return True
        time.sleep(0.05)
    return False


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except (OSError, IndexError):
        return True
