"""Start the repair DAG once per failure fingerprint, from inside a task's ``on_failure_callback``.

On Airflow 3 a callback runs in the task process after the failure, without metadata-DB access, and
``TriggerDagRunOperator.execute`` there triggers nothing (it raises an exception that only the execute path
handles). What does work is the message the task runner itself sends for that operator: ``TriggerDagRun``
on the supervisor channel, which the supervisor forwards to the Execution API. The run id is derived from
the fingerprint, so a second failure with the same fingerprint finds the run already there: that answer is
the dedup, not an error.

Deployments that prefer the public REST API use :class:`RestDispatcher` instead
(``POST /api/v2/dags/{dag_id}/dagRuns``); it dedups the same way, on a 409. :class:`AirflowApiClient` extends it
with authenticated reads (``GET``), for the backstop that looks for failed task instances; build one from an
Airflow connection with :func:`client_from_connection`.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

if TYPE_CHECKING:
    from collections.abc import Mapping

    import httpx

RUN_ID_PREFIX = "selfheal__"
FINGERPRINT_CHARS = 16
MAX_CONF_BYTES = 512 * 1024

_HEX = re.compile(r"[0-9a-f]+")
# Airflow's own rule for DAG ids (airflow.sdk.definitions._internal.node KEY_REGEX).
_DAG_ID = re.compile(r"^[\w.-]+$")
_DEPLOY_HINT = (
    "is the repair DAG deployed and unpaused? (a missing DAG, a stale one whose file was removed, or one "
    "that was never parsed answers 404; a paused one accepts the run but starts it only once unpaused)"
)


class DispatchError(RuntimeError):
    """The repair DAG could not be started; the message says why and never carries a credential."""


class BackstopError(RuntimeError):
    """The api-server could not be read; the message never carries a credential."""


def repair_run_id(fingerprint: str) -> str:
    """
    The repair run's id for a failure fingerprint: ``selfheal__`` and the first 16 hex digits.

    The same fingerprint always gives the same run id, which is what makes a second trigger a no-op.

    :param fingerprint: hex digest of the incident (at least 16 hex digits, any case).
    :return: the run id, for example ``selfheal__abababababababab``.
    """
    if not isinstance(fingerprint, str):
        raise DispatchError(f"fingerprint must be a hex string, got {type(fingerprint).__name__}")
    normalised = fingerprint.strip().lower()
    if len(normalised) < FINGERPRINT_CHARS or not _HEX.fullmatch(normalised):
        raise DispatchError(
            f"fingerprint must be at least {FINGERPRINT_CHARS} hex digits, got {fingerprint!r}"
        )
    return RUN_ID_PREFIX + normalised[:FINGERPRINT_CHARS]


@dataclass(frozen=True)
class DispatchResult:
    """
    The outcome of one dispatch.

    :param dag_id: the repair DAG.
    :param run_id: the repair run's id (see :func:`repair_run_id`).
    :param created: ``True`` if this call created the run, ``False`` if it already existed.
    :param via: ``"supervisor"`` (Task SDK channel) or ``"rest"`` (public REST API).
    :param detail: a short human-readable note about the answer.
    """

    dag_id: str
    run_id: str
    created: bool
    via: str
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        """
        The result as a JSON-serialisable dict, for XCom or a log line.

        :return: ``dag_id``, ``run_id``, ``created``, ``via`` and ``detail``.
        """
        return asdict(self)


def dispatch_from_task(*, dag_id: str, fingerprint: str, conf: dict[str, Any]) -> DispatchResult:
    """
    Start ``dag_id`` once for ``fingerprint``, from inside a running task process (callbacks included).

    Sends the Task SDK supervisor a ``TriggerDagRun`` message with the run id from :func:`repair_run_id`,
    no logical date and ``reset_dag_run=False``. It works in a worker's task process and in ``dag.test()``.

    .. code-block:: python

        def on_failure(context):
            try:
                result = dispatch_from_task(dag_id="selfheal_repair", fingerprint=fp, conf=incident)
                log.info("repair run %s (created=%s)", result.run_id, result.created)
            except DispatchError:
                log.exception("could not start the repair DAG")

    :param dag_id: the repair DAG to start.
    :param fingerprint: the failure fingerprint; the dedup key.
    :param conf: the run's conf; JSON-serialisable, at most 512 kB encoded.
    :return: ``created=True`` when this call started the run, ``created=False`` when it already existed.
    :raises DispatchError: outside a task process, on invalid arguments, or when the API server refuses.
    """
    run_id = repair_run_id(fingerprint)
    _check_dag_id(dag_id)
    payload = _checked_conf(conf)

    from airflow.sdk.execution_time import task_runner

    comms = getattr(task_runner, "SUPERVISOR_COMMS", None)
    if comms is None:
        raise DispatchError(
            "dispatch_from_task must run inside an Airflow task process (a task or its callbacks); "
            "elsewhere use RestDispatcher"
        )

    from airflow.sdk.api.client import ServerResponseError
    from airflow.sdk.exceptions import AirflowRuntimeError, ErrorType
    from airflow.sdk.execution_time.comms import ErrorResponse, OKResponse, TriggerDagRun

    message = TriggerDagRun(
        dag_id=dag_id, run_id=run_id, conf=payload, logical_date=None, reset_dag_run=False
    )
    try:
        answer = comms.send(message)
    except AirflowRuntimeError as exc:
        # A task subprocess: the supervisor turned the API server's error into an error frame.
        detail = exc.error.detail or {}
        status = detail.get("status_code")
        raise _api_error(dag_id, status, detail.get("detail") or detail.get("message")) from exc
    except ServerResponseError as exc:
        # dag.test(): the in-process supervisor hands the API client's exception straight through.
        raise _api_error(dag_id, exc.response.status_code, exc.detail) from exc
    except Exception as exc:
        raise DispatchError(
            f"could not send TriggerDagRun for {dag_id!r} to the supervisor: {type(exc).__name__}: {exc}"
        ) from exc

    if isinstance(answer, OKResponse):
        return DispatchResult(dag_id, run_id, created=True, via="supervisor", detail="triggered")
    if isinstance(answer, ErrorResponse) and answer.error == ErrorType.DAGRUN_ALREADY_EXISTS:
        return DispatchResult(dag_id, run_id, created=False, via="supervisor", detail="run already exists")
    if isinstance(answer, ErrorResponse):
        raise DispatchError(
            f"supervisor refused to trigger {dag_id!r} run {run_id!r}: {answer.error.value} {answer.detail}"
        )
    raise DispatchError(f"unexpected supervisor answer to TriggerDagRun for {dag_id!r}: {answer!r}")


class RestDispatcher:
    """
    Start the repair DAG through the public REST API, ``POST /api/v2/dags/{dag_id}/dagRuns``.

    Airflow 3's api-server takes a JWT as ``Authorization: Bearer``. Pass ``token`` if you have one, or
    ``username`` and ``password`` to get one from the simple auth manager's ``POST /auth/token`` (other
    auth managers issue tokens their own way; pass those as ``token``). With
    ``[core] simple_auth_manager_all_admins = True`` the api-server adds an admin token to every request
    itself, so neither is needed.

    .. code-block:: python

        dispatcher = RestDispatcher("http://127.0.0.1:8080", username="admin", password="...")
        result = dispatcher.dispatch(dag_id="selfheal_repair", fingerprint=fp, conf=incident)

    :param base_url: the api-server's root URL (``http://host:port``, with any path prefix).
    :param token: a JWT for the api-server.
    :param username: simple-auth-manager user to fetch a token for (with ``password``).
    :param password: that user's password.
    :param timeout: per-request timeout in seconds.
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise DispatchError(f"base_url must be an http(s) URL, got {base_url!r}")
        if (username is None) != (password is None):
            raise DispatchError("username and password go together")
        if token is not None and username is not None:
            raise DispatchError("pass either token or username/password, not both")
        if timeout <= 0:
            raise DispatchError("timeout must be positive")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._token = token
        self._username = username
        self._password = password

    def dispatch(self, *, dag_id: str, fingerprint: str, conf: dict[str, Any]) -> DispatchResult:
        """
        Create the repair run for ``fingerprint`` unless it already exists.

        :param dag_id: the repair DAG to start.
        :param fingerprint: the failure fingerprint; the dedup key.
        :param conf: the run's conf; JSON-serialisable, at most 512 kB encoded.
        :return: ``created=True`` on 200, ``created=False`` on 409 (the run exists).
        :raises DispatchError: on invalid arguments, 404 (DAG not found), 401/403 (auth) or any other error.
        """
        run_id = repair_run_id(fingerprint)
        _check_dag_id(dag_id)
        payload = _checked_conf(conf)
        url = f"{self.base_url}/api/v2/dags/{quote(dag_id, safe='')}/dagRuns"
        body = {"dag_run_id": run_id, "logical_date": None, "conf": payload}

        response = self._post(url, body, self._headers())
        if response.status_code == 401 and self._username is not None:
            # A fetched token may have expired since the last dispatch: fetch a new one once.
            self._token = None
            response = self._post(url, body, self._headers())

        status = response.status_code
        if status in (200, 201):
            state = _json_field(response, "state")
            detail = f"triggered (state {state})" if state else "triggered"
            return DispatchResult(dag_id, run_id, created=True, via="rest", detail=detail)
        if status == 409:
            return DispatchResult(dag_id, run_id, created=False, via="rest", detail="run already exists")
        raise _api_error(dag_id, status, _error_detail(response), where=self.base_url)

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if self._token is None and self._username is not None:
            self._token = self._fetch_token()
        if self._token is not None:
            headers["Authorization"] = f"Bearer {self._token}"
        return headers

    def _fetch_token(self) -> str:
        url = f"{self.base_url}/auth/token"
        response = self._post(url, {"username": self._username, "password": self._password}, {})
        if response.status_code in (401, 403):
            raise DispatchError(
                f"the api-server at {self.base_url} rejected the credentials of {self._username!r}"
            )
        if response.status_code == 404:
            raise DispatchError(
                f"no {url} (only the simple auth manager serves it); get a token from your auth manager "
                "and pass it as token="
            )
        token = _json_field(response, "access_token") if response.status_code in (200, 201) else None
        if not token:
            raise DispatchError(
                f"could not get a token from {url}: HTTP {response.status_code} {_error_detail(response)}"
            )
        return token

    def _post(self, url: str, body: dict[str, Any], headers: dict[str, str]) -> httpx.Response:
        import httpx

        try:
            return httpx.post(url, json=body, headers=headers, timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise DispatchError(
                f"could not reach the api-server at {url}: {type(exc).__name__}: {exc}"
            ) from exc


class AirflowApiClient(RestDispatcher):
    """
    A :class:`RestDispatcher` that can also read the REST API, with the same auth.

    .. code-block:: python

        client = AirflowApiClient("http://127.0.0.1:8080", username="admin", password="...")
        failed = client.get_json("/api/v2/dags/~/dagRuns/~/taskInstances", {"state": "failed"})

    :param base_url: the api-server's root URL.
    :param kwargs: ``token``, ``username``/``password`` and ``timeout``, as for ``RestDispatcher``.
    """

    def get_json(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        """
        ``GET`` a REST path and return its JSON body.

        :param path: the path after the base URL, starting with ``/``; path segments already quoted.
        :param params: query parameters; a list value repeats the parameter.
        :return: the decoded JSON.
        :raises BackstopError: when the server cannot be reached or answers other than 200.
        """
        url = self.base_url + path
        response = self._get(url, params)
        if response.status_code == 401 and self._username is not None:
            self._token = None  # an expired token: fetch a new one once, as dispatch() does
            response = self._get(url, params)
        if response.status_code != 200:
            raise BackstopError(f"GET {path} answered HTTP {response.status_code}: {response.text[:300]}")
        try:
            return response.json()
        except ValueError as exc:
            raise BackstopError(f"GET {path} did not answer JSON: {exc}") from exc

    def _get(self, url: str, params: Mapping[str, Any] | None) -> httpx.Response:
        import httpx

        try:
            headers = self._headers()
            return httpx.get(url, params=dict(params or {}), headers=headers, timeout=self.timeout)
        except DispatchError as exc:
            raise BackstopError(str(exc)) from exc
        except httpx.HTTPError as exc:
            raise BackstopError(f"could not reach the api-server at {url}: {type(exc).__name__}") from exc


def client_from_connection(conn_id: str, *, timeout: float = 10.0) -> AirflowApiClient:
    """
    An api-server client from an ``http`` connection: host (with or without scheme), port, login/password.

    An extra ``token`` is used as a ready JWT instead of login/password.

    :param conn_id: the connection id.
    :param timeout: per-request timeout in seconds.
    :return: the client.
    """
    from airflow.providers.common.compat.sdk import BaseHook

    connection = BaseHook.get_connection(conn_id)
    host = (connection.host or "").rstrip("/")
    if not host:
        raise BackstopError(f"connection {conn_id!r} has no host; set it to the api-server's base URL")
    if "://" not in host:
        host = f"{connection.schema or 'http'}://{host}"
    if connection.port and host.count(":") == 1:
        host = f"{host}:{connection.port}"
    token = connection.extra_dejson.get("token") or None
    if token:
        return AirflowApiClient(host, token=str(token), timeout=timeout)
    if connection.login:
        return AirflowApiClient(
            host, username=connection.login, password=connection.password or "", timeout=timeout
        )
    return AirflowApiClient(host, timeout=timeout)


def _check_dag_id(dag_id: str) -> None:
    if not isinstance(dag_id, str) or not _DAG_ID.fullmatch(dag_id):
        raise DispatchError(f"dag_id must be letters, digits, '_', '.' or '-', got {dag_id!r}")


def _checked_conf(conf: dict[str, Any]) -> dict[str, Any]:
    """The conf as it will be stored: validated, size-bounded and round-tripped through JSON."""
    if not isinstance(conf, dict):
        raise DispatchError(f"conf must be a dict, got {type(conf).__name__}")
    bad_keys = [key for key in conf if not isinstance(key, str)]
    if bad_keys:
        raise DispatchError(f"conf keys must be strings, got {bad_keys[:3]!r}")
    try:
        encoded = json.dumps(conf, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise DispatchError(f"conf is not JSON-serialisable: {exc}") from exc
    size = len(encoded.encode("utf-8"))
    if size > MAX_CONF_BYTES:
        raise DispatchError(
            f"conf is {size} bytes of JSON, more than the {MAX_CONF_BYTES} allowed; "
            "put large evidence in the artifacts store and pass its path"
        )
    decoded: dict[str, Any] = json.loads(encoded)
    return decoded


def _api_error(
    dag_id: str, status: int | None, detail: Any, *, where: str = "the API server"
) -> DispatchError:
    shown = _short(detail)
    if status == 404:
        return DispatchError(f"DAG {dag_id!r} not found by {where} (404: {shown}); {_DEPLOY_HINT}")
    if status in (401, 403):
        return DispatchError(
            f"{where} refused to trigger {dag_id!r}: HTTP {status} ({shown}); check the token or credentials "
            "and that the user may create DAG runs"
        )
    if status is None:
        return DispatchError(f"{where} could not trigger {dag_id!r}: {shown}")
    return DispatchError(f"{where} refused to trigger {dag_id!r}: HTTP {status} ({shown})")


def _short(detail: Any, limit: int = 300) -> str:
    text = detail if isinstance(detail, str) else json.dumps(detail, default=str)
    return text if len(text) <= limit else text[:limit] + "..."


def _json_field(response: httpx.Response, name: str) -> str | None:
    try:
        data = response.json()
    except ValueError:
        return None
    value = data.get(name) if isinstance(data, dict) else None
    return value if isinstance(value, str) else None


def _error_detail(response: httpx.Response) -> Any:
    try:
        data = response.json()
    except ValueError:
        return response.text
    return data.get("detail", data) if isinstance(data, dict) else data
