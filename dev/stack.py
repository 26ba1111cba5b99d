"""`make up` / `make down`: a real Airflow deployment on this machine, every server on 127.0.0.1.

``python -m dev.stack up`` starts a supervisor in the background, which starts and watches:

* PostgreSQL (the metadata DB) and Redis (the Celery broker), from Debian's packages (``dev/debs.sh``);
* an S3-compatible server (moto) holding the artifacts root, ``s3://selfheal-stack/artifacts``;
* the embedded Snowflake stand-in, loaded with the demo shop's raw data;
* the on-call inbox (``dev/inbox.py``), which receives Slack and PagerDuty and lists what arrived;
* Airflow's api-server, scheduler, dag-processor and triggerer, on the CeleryExecutor;
* two Celery workers, ``worker-a`` and ``worker-b``, each with its own task hostname, temp dir and git
  checkout of the deploy repo (no worker reads another's disk: artifacts travel through S3 and XCom);
* a git-sync loop that moves each checkout to the deploy branch's head, as Airflow's Helm chart does with its
  git-sync sidecar, so that a promoted fix reaches every worker.

The supervisor restarts a server that dies (a killed worker or scheduler comes back within seconds) and stops
them all on ``python -m dev.stack down``, which then checks that no process of the stack is left. Each ``up``
starts from an empty state folder (``.stack/`` or ``SELFHEAL_STACK_DIR``).

Other commands: ``status``, ``inject <scenario>`` and ``reset <scenario>`` (``python -m dev.scenarios list``),
``trigger`` (a pipeline run), ``mttr`` (the measured loop under the scheduler, see :mod:`dev.stack_mttr`).

Ports come from ``SELFHEAL_STACK_<NAME>_PORT`` (``API``, ``POSTGRES``, ``REDIS``, ``S3``, ``WAREHOUSE``,
``INBOX``); the defaults are below. The UI user is ``oncall``; its password is made at ``up`` and printed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DIR = REPO_ROOT / ".stack"
DEFAULT_PORTS = {
    "api": 8080,
    "postgres": 55432,
    "redis": 56379,
    "s3": 59000,
    "warehouse": 58765,
    "inbox": 58025,
}
WORKERS = ("worker-a", "worker-b")
PIPELINE_DAG_ID = "shop_pipeline"
REPAIR_DAG_ID = "selfheal_repair"
UI_USER = "oncall"
BUCKET = "selfheal-stack"
S3_CONN_ID = "selfheal_s3"
SYNC_SECONDS = 5.0
READY_SECONDS = 420.0


class StackError(RuntimeError):
    """The stack could not start, or a command found it in a state it cannot work with."""


def worker_hostname() -> str:
    """Airflow's ``[core] hostname_callable`` for the stack: each worker's own name, else the machine's."""
    return os.environ.get("SELFHEAL_STACK_HOSTNAME") or socket.getfqdn()


def stack_dir() -> Path:
    return Path(os.environ.get("SELFHEAL_STACK_DIR") or DEFAULT_DIR).resolve()


def configured_ports() -> dict[str, int]:
    ports = {}
    for name, default in DEFAULT_PORTS.items():
        raw = os.environ.get(f"SELFHEAL_STACK_{name.upper()}_PORT", str(default))
        try:
            ports[name] = int(raw)
        except ValueError:
            raise StackError(f"SELFHEAL_STACK_{name.upper()}_PORT={raw!r} is not a port number") from None
    return ports


@dataclass
class State:
    """What ``up`` wrote in ``<dir>/state.json``: the supervisor, the servers' pids and where they listen."""

    dir: str
    ports: dict[str, int]
    password: str
    supervisor_pid: int = 0
    ready: bool = False
    failed: str = ""
    pids: dict[str, int] = field(default_factory=dict)
    restarts: dict[str, int] = field(default_factory=dict)
    postgres_dir: str = ""

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['api']}"

    @property
    def inbox_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['inbox']}"

    @property
    def s3_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"

    @property
    def origin(self) -> Path:
        return Path(self.dir) / "deploy" / "origin.git"

    def save(self) -> None:
        path = Path(self.dir) / "state.json"
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(asdict(self), indent=2))
        os.replace(temporary, path)

    @classmethod
    def load(cls, folder: Path | None = None) -> State:
        path = (folder or stack_dir()) / "state.json"
        if not path.exists():
            raise StackError(f"no stack in {path.parent}: start one with `make up`")
        return cls(**json.loads(path.read_text()))


def alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):
        if Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z"):
            return False
    return True


def port_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        return True
    return False


# ---------------------------------------------------------------------------------------------------------
# The environment every Airflow process shares, and each one's own part.


def airflow_environ(state: State) -> dict[str, str]:
    """Configuration for every Airflow process of the stack (all in the environment, nothing in a file).

    It starts from the demo's and the tests' settings (``dev.airflow_env``: telemetry off, the shop's DAG names,
    the warehouse connection) and replaces what a deployment does differently.
    """
    from dev import airflow_env
    from dev.s3 import S3Server
    from dev.warehouse import Warehouse

    root = Path(state.dir)
    ports = state.ports
    pg = f"postgresql+psycopg2://airflow@127.0.0.1:{ports['postgres']}/airflow"
    warehouse = Warehouse("127.0.0.1", ports["warehouse"], root / "warehouse")
    s3 = S3Server(endpoint_url=state.s3_url, bucket=BUCKET)
    inbox = state.inbox_url
    shared = airflow_env.airflow_environ(root / "airflow", warehouse)
    shared.pop("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS")  # the stack signs in
    environ = {
        **shared,
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": os.environ.get("HOME", str(root)),
        "LANG": "C.UTF-8",
        "PYTHONPATH": str(REPO_ROOT),
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__HOSTNAME_CALLABLE": "dev.stack.worker_hostname",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{state.api_url}/execution/",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{UI_USER}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(root / "airflow" / "passwords.json"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": pg,
        "AIRFLOW__CELERY__BROKER_URL": f"redis://127.0.0.1:{ports['redis']}/0",
        "AIRFLOW__CELERY__RESULT_BACKEND": f"db+postgresql://airflow@127.0.0.1:{ports['postgres']}/airflow",
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
        "AIRFLOW__CELERY__WORKER_PREFETCH_MULTIPLIER": "1",
        "AIRFLOW__CELERY__SYNC_PARALLELISM": "1",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(ports["api"]),
        "AIRFLOW__API__BASE_URL": state.api_url,
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API__SECRET_KEY": _stack_secret(root, "api"),
        "AIRFLOW__API_AUTH__JWT_SECRET": _stack_secret(root, "jwt"),
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "45",
        "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": "20",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "15",
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "60",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(root / "logs"),
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "AIRFLOW__SELFHEAL__ARTIFACTS_ROOT": f"s3://{BUCKET}/artifacts",
        "AIRFLOW__SELFHEAL__ARTIFACTS_CONN_ID": S3_CONN_ID,
        "SELFHEAL_SLACK_CONN_ID": "stack_slack",
        "SELFHEAL_PAGERDUTY_CONN_ID": "stack_pagerduty",
        "SELFHEAL_APPROVAL_TIMEOUT_MINUTES": "60",
        "AIRFLOW_CONN_STACK_SLACK": json.dumps(
            {"conn_type": "slackwebhook", "password": f"{inbox}/services/T0/B0/stack"}
        ),
        "AIRFLOW_CONN_STACK_PAGERDUTY": json.dumps(
            {"conn_type": "pagerduty_events", "host": inbox, "password": "s" * 32}
        ),
        **s3.environ(S3_CONN_ID),
    }
    return environ


def checkout_environ(state: State, name: str) -> dict[str, str]:
    """The part of one process' environment that is its own: the checkout, the temp dir, the hostname."""
    own = Path(state.dir) / "nodes" / name
    project = own / "shop_dbt"
    return {
        "TMPDIR": str(own / "tmp"),
        "SELFHEAL_STACK_HOSTNAME": name,
        "SELFHEAL_DBT_PROJECT_DIR": str(project),
        "SELFHEAL_DBT_MANIFEST": str(project / "target" / "manifest.json"),
        "DBT_PROFILES_DIR": str(project),
    }


def _stack_secret(root: Path, name: str) -> str:
    path = root / "secrets" / name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    return path.read_text()


# ---------------------------------------------------------------------------------------------------------
# The supervisor.


@dataclass
class Service:
    name: str
    argv: list[str]
    env: dict[str, str]
    ready: Any = None  # a callable that says the service is up
    stop_signal: int = signal.SIGTERM
    user: str | None = None
    process: subprocess.Popen[bytes] | None = None

    def start(self, logs: Path) -> None:
        log = (logs / f"{self.name}.log").open("ab")
        log.write(f"\n=== start {time.strftime('%H:%M:%S')}: {' '.join(self.argv)}\n".encode())
        log.flush()
        self.process = subprocess.Popen(
            self.argv,
            env=self.env,
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so that stopping it stops its children too
            user=self.user,
        )
        log.close()

    def stop(self, timeout: float = 30.0) -> None:
        if self.process is None:
            return
        _stop_group(self.process.pid, self.stop_signal, timeout)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)


def _stop_group(pid: int, first: int, timeout: float) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, first)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _group_alive(pid):
        time.sleep(0.3)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _group_alive(pgid: int) -> bool:
    return bool(group_members(pgid))


def group_members(pgid: int) -> list[int]:
    """The live processes of process group ``pgid`` (zombies excluded)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError):
            fields = (entry / "stat").read_text().rsplit(") ", 1)[1].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                members.append(int(entry.name))
    return members


def _postgres_user() -> str | None:
    """PostgreSQL refuses to run as root: run it as Debian's ``postgres`` user then."""
    if os.geteuid() != 0:
        return None
    import pwd

    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise StackError(
            "running as root needs the `postgres` user: run `dev/debs.sh` (make up does)"
        ) from None
    return "postgres"


def _pg_bin(name: str) -> str:
    for folder in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (folder / name).exists():
            return str(folder / name)
    found = shutil.which(name)
    if found is None:
        raise StackError(f"{name} not found: install PostgreSQL with `dev/debs.sh` (make up does)")
    return found


class Supervisor:
    def __init__(self, state: State) -> None:
        self.state = state
        self.root = Path(state.dir)
        self.logs = self.root / "logs" / "services"
        self.services: list[Service] = []
        self.stopping = False

    def log(self, message: str) -> None:
        print(f"[stack {time.strftime('%H:%M:%S')}] {message}", flush=True)

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        try:
            self.prepare()
            self.start_all()
            self.state.ready = True
            self.state.save()
            self.log("ready")
            self.watch()
        except KeyboardInterrupt:
            pass
        except Exception as exc:  # noqa: BLE001 - recorded for `up`, which prints it
            if not self.stopping:
                self.state.failed = f"{type(exc).__name__}: {exc}"
                self.state.save()
                self.log(f"failed: {self.state.failed}")
        finally:
            self.stop_all()
        return 0 if not self.state.failed else 1

    def _on_stop(self, signum: int, frame: Any) -> None:
        self.stopping = True
        raise KeyboardInterrupt

    # -- preparation -------------------------------------------------------------------------------------

    def prepare(self) -> None:
        from dev.project_repo import git, git_copy

        self.logs.mkdir(parents=True, exist_ok=True)
        (self.root / "airflow").mkdir(parents=True, exist_ok=True)
        passwords = self.root / "airflow" / "passwords.json"
        passwords.write_text(json.dumps({UI_USER: self.state.password}))
        passwords.chmod(0o600)
        self.log("deploy repo: the demo dbt project on main, with a bare origin")
        _, origin = git_copy(self.root / "deploy")
        env = {**airflow_environ(self.state), **checkout_environ(self.state, "dag-processor")}
        for name in ("dag-processor", *WORKERS):
            own = self.root / "nodes" / name
            (own / "tmp").mkdir(parents=True, exist_ok=True)
            git(own, "clone", "--quiet", str(origin), "shop_dbt")
        self.log("dbt parse in each checkout (the dag-processor's and each worker's), side by side")
        dbt = str(Path(sys.executable).with_name("dbt"))
        parses = {}
        for name in ("dag-processor", *WORKERS):
            project = self.root / "nodes" / name / "shop_dbt"
            parses[name] = subprocess.Popen(
                [dbt, "parse", "--quiet", "--project-dir", str(project)],
                env={**env, "DBT_PROFILES_DIR": str(project)},
                cwd=REPO_ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
        for name, parse in parses.items():
            output = parse.communicate()[0].decode("utf-8", "replace")
            if parse.returncode != 0:
                raise StackError(f"dbt parse ({name}) failed ({parse.returncode}): {output[-1500:]}")

    def _run(self, argv: list[str], env: dict[str, str], what: str, user: str | None = None) -> None:
        completed = subprocess.run(
            argv, env=env, cwd=REPO_ROOT, capture_output=True, text=True, check=False, user=user
        )
        if completed.returncode != 0:
            raise StackError(
                f"{what} failed ({completed.returncode}): {(completed.stdout + completed.stderr)[-1500:]}"
            )

    def start_all(self) -> None:
        ports = self.state.ports
        for name, port in ports.items():
            if port_open(port):
                raise StackError(
                    f"port {port} ({name}) is already in use on 127.0.0.1: stop what holds it, or choose another "
                    f"with SELFHEAL_STACK_{name.upper()}_PORT=<port>"
                )
        base = airflow_environ(self.state)
        python = sys.executable
        self.start_postgres(base)
        self.add(
            Service(
                "redis",
                ["redis-server", "--bind", "127.0.0.1", "--port", str(ports["redis"]), "--save", ""]
                + ["--appendonly", "no", "--dir", str(self.root / "redis"), "--protected-mode", "yes"],
                base,
                ready=lambda: port_open(ports["redis"]),
            ),
            prepare=lambda: (self.root / "redis").mkdir(exist_ok=True),
        )
        self.add(
            Service(
                "s3",
                [python, "-m", "dev.s3", "serve", "--port", str(ports["s3"]), "--bucket", BUCKET],
                base,
                ready=lambda: port_open(ports["s3"]),
            )
        )
        self.add(
            Service(
                "warehouse",
                [python, "-m", "dev.warehouse", "serve", "--port", str(ports["warehouse"])]
                + ["--data-dir", str(self.root / "warehouse")],
                base,
                ready=lambda: port_open(ports["warehouse"]),
            )
        )
        self.load_raw()
        self.add(
            Service(
                "inbox",
                [
                    python,
                    "-m",
                    "dev.inbox",
                    "--port",
                    str(ports["inbox"]),
                    "--record",
                    str(self.root / "inbox.jsonl"),
                ],
                base,
                ready=lambda: port_open(ports["inbox"]),
            )
        )
        self.log("airflow db migrate (PostgreSQL)")
        self._run([python, "-m", "airflow", "db", "migrate"], base, "airflow db migrate")
        self.add(
            Service(
                "api-server",
                [python, "-m", "airflow", "api-server", "--host", "127.0.0.1", "--port", str(ports["api"])],
                base,
                ready=lambda: _healthy(self.state.api_url),
            )
        )
        dag_env = {**base, **checkout_environ(self.state, "dag-processor")}
        self.add(Service("dag-processor", [python, "-m", "airflow", "dag-processor"], dag_env))
        self.add(
            Service(
                "scheduler",
                [python, "-m", "airflow", "scheduler"],
                {**base, **_own_tmp(self.root, "scheduler")},
            )
        )
        self.add(
            Service(
                "triggerer",
                [python, "-m", "airflow", "triggerer"],
                {**base, **_own_tmp(self.root, "triggerer")},
            )
        )
        for worker in WORKERS:
            argv = [python, "-m", "airflow", "celery", "worker", "--celery-hostname", f"{worker}@%h"]
            argv += ["--skip-serve-logs", "--without-gossip", "--without-mingle"]
            self.add(
                Service(worker, argv, {**base, **checkout_environ(self.state, worker)}),
                ready_log=f"{worker}@",
            )
        self.wait_for_dags()

    def start_postgres(self, base: dict[str, str]) -> None:
        user = _postgres_user()
        data = Path(tempfile.mkdtemp(prefix="selfheal-stack-pg-")) if user else self.root / "postgres"
        self.state.postgres_dir = str(data)
        self.state.save()
        data.mkdir(parents=True, exist_ok=True)
        if user:
            shutil.chown(data, user, user)
        env = {"PATH": base["PATH"], "LANG": "C.UTF-8", "HOME": str(data)}
        self._run(
            [_pg_bin("initdb"), "-D", str(data / "data"), "-U", "airflow", "--auth=trust", "-E", "UTF8"],
            env,
            "initdb",
            user=user,
        )
        port = self.state.ports["postgres"]
        argv = [_pg_bin("postgres"), "-D", str(data / "data"), "-p", str(port), "-h", "127.0.0.1"]
        argv += ["-k", str(data), "-c", "fsync=off", "-c", "max_connections=200"]
        self.add(
            Service(
                "postgres", argv, env, ready=lambda: port_open(port), stop_signal=signal.SIGINT, user=user
            )
        )
        import psycopg2

        connection = psycopg2.connect(host="127.0.0.1", port=port, user="airflow", dbname="postgres")
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("CREATE DATABASE airflow")
        connection.close()

    def load_raw(self) -> None:
        from dev.loader import load_raw
        from dev.warehouse import Warehouse

        warehouse = Warehouse("127.0.0.1", self.state.ports["warehouse"], self.root / "warehouse")
        with warehouse.connect() as conn:
            counts = load_raw(conn)
        self.log("raw shop data loaded: " + ", ".join(f"{table} {rows}" for table, rows in counts.items()))

    def add(self, service: Service, *, prepare: Any = None, ready_log: str | None = None) -> None:
        if prepare:
            prepare()
        self.log(f"starting {service.name}")
        service.start(self.logs)
        self.services.append(service)
        self._record()
        deadline = time.monotonic() + READY_SECONDS
        while True:
            assert service.process is not None
            if service.process.poll() is not None:
                raise StackError(
                    f"{service.name} exited with {service.process.returncode}; see {self.logs / service.name}.log"
                )
            if ready_log is not None:
                tail = _tail(self.logs / f"{service.name}.log")
                if ready_log in tail and " ready." in tail:
                    break
            elif service.ready is None or service.ready():
                break
            if time.monotonic() > deadline:
                raise StackError(
                    f"{service.name} not ready after {READY_SECONDS:.0f}s; see {self.logs / service.name}.log"
                )
            time.sleep(0.5)

    def wait_for_dags(self) -> None:
        client = StackClient(self.state)
        deadline = time.monotonic() + READY_SECONDS
        for dag_id in (PIPELINE_DAG_ID, REPAIR_DAG_ID):
            while True:
                response = client.get(f"/api/v2/dags/{dag_id}", check=False)
                if response.status_code == 200:
                    break
                if time.monotonic() > deadline:
                    errors = client.get("/api/v2/importErrors", check=False).text[:1500]
                    raise StackError(f"the dag-processor did not load {dag_id}: {errors}")
                time.sleep(1)
        self.log("both DAGs loaded")

    def _record(self) -> None:
        self.state.pids = {s.name: s.process.pid for s in self.services if s.process is not None}
        self.state.save()

    # -- watching ----------------------------------------------------------------------------------------

    def watch(self) -> None:
        next_sync = 0.0
        while not self.stopping:
            for service in self.services:
                assert service.process is not None
                if service.process.poll() is not None and not self.stopping:
                    code = service.process.returncode
                    self.state.restarts[service.name] = self.state.restarts.get(service.name, 0) + 1
                    self.log(f"{service.name} exited with {code}: restarting it")
                    # A killed server leaves its children (a worker's task processes) in its group: end them.
                    _stop_group(service.process.pid, signal.SIGKILL, 5)
                    service.start(self.logs)
                    self._record()
            if time.monotonic() >= next_sync:
                self.git_sync()
                next_sync = time.monotonic() + SYNC_SECONDS
            time.sleep(1)

    def git_sync(self) -> None:
        """Move every checkout to the deploy branch's head on origin, like a git-sync sidecar."""
        for name in ("dag-processor", *WORKERS):
            project = self.root / "nodes" / name / "shop_dbt"
            with contextlib.suppress(subprocess.SubprocessError, OSError):
                subprocess.run(
                    ["git", "fetch", "--quiet", "origin", "main"], cwd=project, check=True, timeout=30
                )
                head = subprocess.run(
                    ["git", "rev-parse", "HEAD", "FETCH_HEAD"],
                    cwd=project,
                    check=True,
                    capture_output=True,
                    text=True,
                ).stdout.split()
                if len(head) == 2 and head[0] != head[1]:
                    subprocess.run(
                        ["git", "reset", "--quiet", "--hard", "FETCH_HEAD"], cwd=project, check=True
                    )
                    self.log(f"git-sync: {name} moved to {head[1][:10]}")

    def stop_all(self) -> None:
        self.stopping = True
        for service in reversed(self.services):
            self.log(f"stopping {service.name}")
            service.stop()
        if self.state.postgres_dir and self.state.postgres_dir != str(self.root / "postgres"):
            shutil.rmtree(self.state.postgres_dir, ignore_errors=True)
        self.log("stopped")


def _own_tmp(root: Path, name: str) -> dict[str, str]:
    folder = root / "nodes" / name / "tmp"
    folder.mkdir(parents=True, exist_ok=True)
    return {"TMPDIR": str(folder)}


def _tail(path: Path, size: int = 20000) -> str:
    with contextlib.suppress(OSError), path.open("rb") as handle:
        handle.seek(max(0, path.stat().st_size - size))
        return handle.read().decode("utf-8", "replace")
    return ""


def _healthy(base_url: str) -> bool:
    import httpx

    with contextlib.suppress(httpx.HTTPError):
        return httpx.get(f"{base_url}/api/v2/monitor/health", timeout=2).status_code == 200
    return False


# ---------------------------------------------------------------------------------------------------------
# The REST API, signed in as the UI user.


class StackClient:
    """The stack's api-server, signed in as ``oncall`` with a token from ``POST /auth/token``."""

    def __init__(self, state: State) -> None:
        self.state = state
        self._token: str | None = None

    def token(self) -> str:
        import httpx

        if self._token is None:
            response = httpx.post(
                f"{self.state.api_url}/auth/token",
                json={"username": UI_USER, "password": self.state.password},
                timeout=10,
            )
            if response.status_code >= 300:
                raise StackError(f"sign-in as {UI_USER} failed: {response.status_code} {response.text[:200]}")
            self._token = str(response.json()["access_token"])
        return self._token

    def request(self, method: str, path: str, *, check: bool = True, **kwargs: Any) -> Any:
        import httpx

        headers = {"Authorization": f"Bearer {self.token()}"}
        response = httpx.request(method, f"{self.state.api_url}{path}", headers=headers, timeout=30, **kwargs)
        if check and response.status_code >= 300:
            raise StackError(f"{method} {path}: {response.status_code} {response.text[:500]}")
        return response

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs)

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None) -> str:
        response = self.request(
            "POST", f"/api/v2/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf or {}}
        )
        return str(response.json()["dag_run_id"])

    def run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return dict(self.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}").json())

    def runs(self, dag_id: str) -> list[dict[str, Any]]:
        return list(
            self.get(f"/api/v2/dags/{dag_id}/dagRuns", params={"order_by": "-start_date"}).json()["dag_runs"]
        )

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        response = self.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 1000})
        return list(response.json()["task_instances"])

    def wait_run(
        self,
        dag_id: str,
        run_id: str,
        *,
        states: tuple[str, ...] = ("success", "failed"),
        timeout: float = 900,
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            run = self.run(dag_id, run_id)
            if run["state"] in states:
                return run
            if time.monotonic() > deadline:
                raise StackError(f"{dag_id} {run_id} still {run['state']} after {timeout:.0f}s")
            time.sleep(2)

    def wait_new_run(self, dag_id: str, known: set[str], *, timeout: float = 600, unless: Any = None) -> str:
        """The id of a run of ``dag_id`` not in ``known``, waiting for one; ``unless()`` true gives up early."""
        deadline = time.monotonic() + timeout
        while True:
            fresh = [run for run in self.runs(dag_id) if run["dag_run_id"] not in known]
            if fresh:
                return str(fresh[0]["dag_run_id"])
            if unless is not None and unless():
                raise StackError(f"no new run of {dag_id} will come: {unless.__doc__ or 'gave up'}")
            if time.monotonic() > deadline:
                raise StackError(f"no new run of {dag_id} was started within {timeout:.0f}s")
            time.sleep(0.5)

    def wait_task(
        self, dag_id: str, run_id: str, task_id: str, states: tuple[str, ...], timeout: float = 900
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            for ti in self.task_instances(dag_id, run_id):
                if ti["task_id"] == task_id and ti["state"] in states:
                    return ti
            run = self.run(dag_id, run_id)
            if run["state"] in ("success", "failed"):
                tis = {ti["task_id"]: ti["state"] for ti in self.task_instances(dag_id, run_id)}
                raise StackError(
                    f"{dag_id} {run_id} ended {run['state']} before {task_id} was {states}: {tis}"
                )
            if time.monotonic() > deadline:
                raise StackError(f"{task_id} of {run_id} not in {states} after {timeout:.0f}s")
            time.sleep(2)

    def answer(self, run_id: str, option: str, task_id: str = "approve") -> dict[str, Any]:
        path = f"/api/v2/dags/{REPAIR_DAG_ID}/dagRuns/{run_id}/taskInstances/{task_id}/-1/hitlDetails"
        return dict(self.request("PATCH", path, json={"chosen_options": [option], "params_input": {}}).json())


def inbox_deliveries(state: State) -> list[dict[str, Any]]:
    import httpx

    return list(httpx.get(f"{state.inbox_url}/deliveries.json", timeout=10).json())


# ---------------------------------------------------------------------------------------------------------
# Commands.


def up(
    folder: Path | None = None, ports: dict[str, int] | None = None, *, timeout: float = READY_SECONDS + 120
) -> State:
    """Start the stack (a fresh state folder) and return once every server is ready.

    :param folder: the state folder (default ``SELFHEAL_STACK_DIR`` or ``.stack``); emptied first.
    :param ports: the servers' ports (default :func:`configured_ports`).
    """
    folder = (folder or stack_dir()).resolve()
    with contextlib.suppress(StackError):
        old = State.load(folder)
        if alive(old.supervisor_pid):
            raise StackError(
                f"a stack is already up in {folder} (supervisor pid {old.supervisor_pid}): `make down` first"
            )
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    state = State(dir=str(folder), ports=ports or configured_ports(), password=secrets.token_urlsafe(12))
    state.save()
    with (folder / "supervisor.log").open("ab") as log:
        supervisor = subprocess.Popen(
            [sys.executable, "-m", "dev.stack", "supervise"],
            env={**os.environ, "SELFHEAL_STACK_DIR": str(folder)},
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    state.supervisor_pid = supervisor.pid
    state.save()
    deadline = time.monotonic() + timeout
    while True:
        current = State.load(folder)
        if current.ready:
            return current
        if current.failed or supervisor.poll() is not None:
            supervisor.wait()
            log_tail = _tail(folder / "supervisor.log", 3000)
            raise StackError(f"the stack did not start: {current.failed or 'supervisor exited'}\n{log_tail}")
        if time.monotonic() > deadline:
            down(folder)
            raise StackError(f"the stack was not ready after {timeout:.0f}s; see {folder / 'supervisor.log'}")
        time.sleep(1)


def down(folder: Path | None = None) -> list[int]:
    """Stop the stack; return the pids that had to be killed after the supervisor was gone (should be none)."""
    folder = folder or stack_dir()
    try:
        state = State.load(folder)
    except StackError:
        return []
    if alive(state.supervisor_pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(state.supervisor_pid, signal.SIGTERM)
        deadline = time.monotonic() + 120
        while alive(state.supervisor_pid) and time.monotonic() < deadline:
            time.sleep(0.5)
    state = State.load(folder)
    leftovers = []
    for pid in [state.supervisor_pid, *state.pids.values()]:
        members = group_members(pid)
        if alive(pid) or members:
            leftovers += members or [pid]
            _stop_group(pid, signal.SIGKILL, 5)
    if state.postgres_dir and Path(state.postgres_dir).is_relative_to(tempfile.gettempdir()):
        shutil.rmtree(state.postgres_dir, ignore_errors=True)
    return leftovers


def stack_processes(folder: Path) -> list[int]:
    """Processes still running whose command line or environment names the stack's folder."""
    needle = str(folder).encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            if needle in (entry / "cmdline").read_bytes() or needle in (entry / "environ").read_bytes():
                if not (entry / "stat").read_text().rsplit(") ", 1)[1].startswith("Z"):
                    found.append(int(entry.name))
    return found


def _print_up(state: State) -> None:
    print(f"stack up in {state.dir}")
    print(f"  Airflow UI      {state.api_url}   user {UI_USER}, password {state.password}")
    print(f"  on-call inbox   {state.inbox_url}")
    print(f"  artifacts       s3://{BUCKET}/artifacts on {state.s3_url}")
    print(
        f"  metadata DB     PostgreSQL on 127.0.0.1:{state.ports['postgres']}; broker Redis on 127.0.0.1:{state.ports['redis']}"
    )
    print(f"  workers         {', '.join(WORKERS)} (CeleryExecutor)")
    print(
        "next: `python -m dev.stack trigger` (a green run and the baseline), `python -m dev.stack inject rename_column`,"
    )
    print(
        "      `python -m dev.stack trigger` again, then approve the repair run in the UI (Browse > Required Actions)."
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dev.stack", description=__doc__.splitlines()[0])
    parser.add_argument(
        "command", choices=["up", "down", "status", "supervise", "inject", "reset", "trigger", "mttr"]
    )
    parser.add_argument("name", nargs="?", help="the scenario, for inject and reset")
    parser.add_argument("--report", type=Path, help="mttr: also write the figures as JSON here")
    args = parser.parse_args(argv)
    try:
        if args.command == "supervise":
            return Supervisor(State.load()).run()
        if args.command == "up":
            _print_up(up())
            return 0
        if args.command == "down":
            leftovers = down()
            remaining = stack_processes(stack_dir())
            if remaining:
                print(f"error: processes of the stack are still running: {remaining}", file=sys.stderr)
                return 1
            print(
                "stack down"
                + (f" (killed {len(leftovers)} stray processes)" if leftovers else "; no process left")
            )
            return 0
        state = State.load()
        if args.command == "status":
            print(
                f"supervisor pid {state.supervisor_pid}: {'running' if alive(state.supervisor_pid) else 'not running'}"
            )
            for name, pid in state.pids.items():
                restarts = state.restarts.get(name, 0)
                print(f"  {name:<14} pid {pid:<8} {'up' if alive(pid) else 'down'}  restarts {restarts}")
            return 0 if alive(state.supervisor_pid) else 1
        if args.command in ("inject", "reset"):
            return scenario_command(state, args.command, args.name)
        if args.command == "trigger":
            run_id = StackClient(state).trigger(PIPELINE_DAG_ID)
            print(
                f"triggered {PIPELINE_DAG_ID} run {run_id}: {state.api_url}/dags/{PIPELINE_DAG_ID}/runs/{run_id}"
            )
            return 0
        from dev.stack_mttr import measure

        return measure(state, args.report)
    except StackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def scenario_command(state: State, command: str, name: str | None) -> int:
    from dev.scenarios import SCENARIOS
    from dev.warehouse import Warehouse

    if not name or name not in SCENARIOS:
        raise StackError(f"name a scenario: one of {', '.join(sorted(SCENARIOS))}")
    scenario = SCENARIOS[name]
    warehouse = Warehouse("127.0.0.1", state.ports["warehouse"], Path(state.dir) / "warehouse")
    with warehouse.connect(database=scenario.raw.database) as conn:
        if command == "inject":
            scenario.apply(conn)
            print(f"injected {scenario.name}: {scenario.description}")
        else:
            print(
                f"reset {scenario.name}" if scenario.reset(conn) else f"nothing to reset for {scenario.name}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
