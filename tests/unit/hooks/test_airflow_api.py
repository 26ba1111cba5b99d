"""Run ids, conf checks, the supervisor answers, the REST dispatcher against a loopback HTTP server, and the REST
client's reads (``AirflowApiClient``) and its construction from an Airflow connection."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any

import pytest

from airflow_selfheal.hooks.airflow_api import (
    MAX_CONF_BYTES,
    AirflowApiClient,
    BackstopError,
    DispatchError,
    DispatchResult,
    RestDispatcher,
    client_from_connection,
    dispatch_from_task,
    repair_run_id,
)
from dev.receivers import Receiver, http_receiver

if TYPE_CHECKING:
    from collections.abc import Iterator

FINGERPRINT = "0123456789abcdef" * 4
RUN_ID = "selfheal__0123456789abcdef"
DAG_ID = "selfheal_repair"
CONF = {"incident": {"pipeline": "shop", "node": "model.shop.orders"}, "fingerprint": FINGERPRINT}


def _json(payload: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    return json.dumps(payload).encode(), {"Content-Type": "application/json"}


def _header(receiver: Receiver, index: int, name: str) -> str | None:
    headers = {key.lower(): value for key, value in receiver.deliveries[index].headers.items()}
    return headers.get(name.lower())


class TestRepairRunId:
    def test_same_fingerprint_same_run_id(self) -> None:
        assert repair_run_id(FINGERPRINT) == repair_run_id(FINGERPRINT) == RUN_ID

    def test_only_first_16_digits_count_and_case_is_ignored(self) -> None:
        assert repair_run_id("0123456789ABCDEF" + "f" * 48) == RUN_ID

    def test_exactly_16_digits_is_enough(self) -> None:
        assert repair_run_id("ab" * 8) == "selfheal__" + "ab" * 8

    @pytest.mark.parametrize(
        "fingerprint",
        [
            pytest.param("", id="empty"),
            pytest.param("abc123", id="too-short"),
            pytest.param("g" * 64, id="not-hex"),
            pytest.param("0123456789abcde/" * 2, id="path-chars"),
            pytest.param(12345678901234567890, id="not-a-string"),
        ],
    )
    def test_invalid_fingerprint_is_refused(self, fingerprint: Any) -> None:
        with pytest.raises(DispatchError, match="fingerprint must be"):
            repair_run_id(fingerprint)


class TestDispatchResult:
    def test_to_dict_is_json_ready(self) -> None:
        result = DispatchResult(DAG_ID, RUN_ID, created=False, via="rest", detail="run already exists")
        assert json.loads(json.dumps(result.to_dict())) == {
            "dag_id": DAG_ID,
            "run_id": RUN_ID,
            "created": False,
            "via": "rest",
            "detail": "run already exists",
        }


class TestConfValidation:
    @pytest.mark.parametrize(
        ("conf", "message"),
        [
            pytest.param({"when": {1, 2}}, "not JSON-serialisable: Object of type set", id="set"),
            pytest.param({"error": ValueError("x")}, "Object of type ValueError", id="exception"),
            pytest.param({"ratio": float("nan")}, "not JSON-serialisable: Out of range float", id="nan"),
            pytest.param({1: "a"}, r"conf keys must be strings, got \[1\]", id="int-key"),
            pytest.param(["a"], "conf must be a dict, got list", id="list"),
            pytest.param(
                {"blob": "x" * MAX_CONF_BYTES}, f"more than the {MAX_CONF_BYTES} allowed", id="too-large"
            ),
        ],
    )
    def test_bad_conf_is_named_before_any_request(self, conf: Any, message: str) -> None:
        with http_receiver() as receiver:
            with pytest.raises(DispatchError, match=message):
                RestDispatcher(receiver.url).dispatch(dag_id=DAG_ID, fingerprint=FINGERPRINT, conf=conf)
            assert receiver.deliveries == []

    def test_bad_conf_is_refused_before_the_supervisor_is_asked(self) -> None:
        with pytest.raises(DispatchError, match="not JSON-serialisable"):
            dispatch_from_task(dag_id=DAG_ID, fingerprint=FINGERPRINT, conf={"x": object()})

    @pytest.mark.parametrize(
        "dag_id",
        [pytest.param("", id="empty"), pytest.param("../etc", id="path"), pytest.param("a b", id="space")],
    )
    def test_bad_dag_id_is_refused(self, dag_id: str) -> None:
        with pytest.raises(DispatchError, match="dag_id must be"):
            dispatch_from_task(dag_id=dag_id, fingerprint=FINGERPRINT, conf={})


class StubSupervisor:
    """Stands in for the task runner's channel: answers like the supervisor of a task subprocess does."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.sent: list[Any] = []

    def send(self, msg: Any) -> Any:
        self.sent.append(msg)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


@pytest.fixture
def supervisor_answering() -> Iterator[Any]:
    """Install a stub channel with Airflow's own hook for in-process comms; returns the installer."""
    from airflow.sdk.execution_time.supervisor import set_supervisor_comms

    with ExitStack() as stack:

        def install(answer: Any) -> StubSupervisor:
            stub = StubSupervisor(answer)
            stack.enter_context(set_supervisor_comms(stub))
            return stub

        yield install


class TestDispatchFromTask:
    """The answers a task subprocess gets; the real channel is exercised under dag.test() in integration."""

    def test_outside_a_task_process_says_so(self) -> None:
        with pytest.raises(DispatchError, match="inside an Airflow task process"):
            dispatch_from_task(dag_id=DAG_ID, fingerprint=FINGERPRINT, conf=CONF)

    def test_ok_means_created(self, supervisor_answering: Any) -> None:
        from airflow.sdk.execution_time.comms import OKResponse, TriggerDagRun

        stub = supervisor_answering(OKResponse(ok=True))
        result = dispatch_from_task(dag_id=DAG_ID, fingerprint=FINGERPRINT, conf=CONF)
        assert result == DispatchResult(DAG_ID, RUN_ID, created=True, via="supervisor", detail="triggered")
        [message] = stub.sent
        assert isinstance(message, TriggerDagRun)
        assert (message.dag_id, message.run_id, message.conf) == (DAG_ID, RUN_ID, CONF)
        assert message.logical_date is None
        assert message.reset_dag_run is False

    def test_already_exists_is_the_dedup_not_an_error(self, supervisor_answering: Any) -> None:
        from airflow.sdk.exceptions import ErrorType
        from airflow.sdk.execution_time.comms import ErrorResponse

        supervisor_answering(ErrorResponse(error=ErrorType.DAGRUN_ALREADY_EXISTS))
        result = dispatch_from_task(dag_id=DAG_ID, fingerprint=FINGERPRINT, conf=CONF)
        assert (result.created, result.run_id, result.via) == (False, RUN_ID, "supervisor")

    def test_missing_dag_names_the_dag(self, supervisor_answering: Any) -> None:
        from airflow.sdk.exceptions import AirflowRuntimeError, ErrorType
        from airflow.sdk.execution_time.comms import ErrorResponse

        # What the supervisor of a task subprocess sends back for a 404 from the Execution API.
        supervisor_answering(
            AirflowRuntimeError(
                ErrorResponse(
                    error=ErrorType.API_SERVER_ERROR,
                    detail={
                        "status_code": 404,
                        "message": "Server returned error",
                        "detail": {
                            "detail": {
                                "reason": "not_found",
                                "message": f"Dag with dag_id: '{DAG_ID}' not found",
                            }
                        },
                    },
                )
            )
        )
        with pytest.raises(DispatchError, match=rf"DAG '{DAG_ID}' not found .*deployed and unpaused"):
            dispatch_from_task(dag_id=DAG_ID, fingerprint=FINGERPRINT, conf=CONF)

    def test_unreachable_api_server_is_an_error(self, supervisor_answering: Any) -> None:
        from airflow.sdk.exceptions import AirflowRuntimeError, ErrorType
        from airflow.sdk.execution_time.comms import ErrorResponse

        supervisor_answering(
            AirflowRuntimeError(
                ErrorResponse(
                    error=ErrorType.API_SERVER_ERROR,
                    detail={"status_code": None, "message": "All connection attempts failed"},
                )
            )
        )
        with pytest.raises(
            DispatchError, match="could not trigger 'selfheal_repair': All connection attempts"
        ):
            dispatch_from_task(dag_id=DAG_ID, fingerprint=FINGERPRINT, conf=CONF)

    def test_broken_channel_is_an_error(self, supervisor_answering: Any) -> None:
        supervisor_answering(EOFError("Request socket closed before length"))
        with pytest.raises(DispatchError, match="could not send TriggerDagRun .*EOFError"):
            dispatch_from_task(dag_id=DAG_ID, fingerprint=FINGERPRINT, conf=CONF)


class TestRestDispatcher:
    def test_created_run_posts_run_id_and_conf(self) -> None:
        with http_receiver() as receiver:
            receiver.respond_next(200, *_json({"dag_run_id": RUN_ID, "state": "queued"}))
            result = RestDispatcher(receiver.url, token="jwt-abc").dispatch(
                dag_id=DAG_ID, fingerprint=FINGERPRINT, conf=CONF
            )
        assert result == DispatchResult(
            DAG_ID, RUN_ID, created=True, via="rest", detail="triggered (state queued)"
        )
        [delivery] = receiver.deliveries
        assert delivery.path == f"/api/v2/dags/{DAG_ID}/dagRuns"
        assert delivery.json() == {"dag_run_id": RUN_ID, "logical_date": None, "conf": CONF}
        assert _header(receiver, 0, "Authorization") == "Bearer jwt-abc"

    def test_existing_run_is_not_created_again(self) -> None:
        with http_receiver() as receiver:
            receiver.respond_next(409, *_json({"detail": {"reason": "Unique constraint violation"}}))
            result = RestDispatcher(receiver.url).dispatch(dag_id=DAG_ID, fingerprint=FINGERPRINT, conf=CONF)
        assert (result.created, result.run_id, result.detail) == (False, RUN_ID, "run already exists")
        assert _header(receiver, 0, "Authorization") is None

    def test_base_url_path_prefix_is_kept(self) -> None:
        with http_receiver() as receiver:
            RestDispatcher(f"{receiver.url}/airflow/").dispatch(
                dag_id=DAG_ID, fingerprint=FINGERPRINT, conf={}
            )
        assert receiver.deliveries[0].path == f"/airflow/api/v2/dags/{DAG_ID}/dagRuns"

    def test_missing_dag_names_the_dag(self) -> None:
        with http_receiver() as receiver:
            receiver.respond_next(404, *_json({"detail": f"Dag with dag_id: '{DAG_ID}' not found"}))
            with pytest.raises(DispatchError, match=rf"DAG '{DAG_ID}' not found.*deployed and unpaused"):
                RestDispatcher(receiver.url).dispatch(dag_id=DAG_ID, fingerprint=FINGERPRINT, conf=CONF)

    @pytest.mark.parametrize(
        ("status", "detail"),
        [pytest.param(401, "Not authenticated", id="401"), pytest.param(403, "Invalid JWT token", id="403")],
    )
    def test_auth_refusal_is_about_auth(self, status: int, detail: str) -> None:
        with http_receiver() as receiver:
            receiver.respond_next(status, *_json({"detail": detail}))
            with pytest.raises(DispatchError, match=rf"HTTP {status} \({detail}\); check the token"):
                RestDispatcher(receiver.url, token="expired").dispatch(
                    dag_id=DAG_ID, fingerprint=FINGERPRINT, conf=CONF
                )
        assert len(receiver.deliveries) == 1

    def test_other_errors_carry_status_and_detail(self) -> None:
        with http_receiver() as receiver:
            receiver.respond_next(400, *_json({"detail": "Dag with dag_id: 'x' has import errors"}))
            with pytest.raises(DispatchError, match="HTTP 400 .*has import errors"):
                RestDispatcher(receiver.url).dispatch(dag_id=DAG_ID, fingerprint=FINGERPRINT, conf=CONF)

    def test_credentials_are_exchanged_for_a_token(self) -> None:
        with http_receiver() as receiver:
            receiver.respond_next(201, *_json({"access_token": "jwt-1"}))
            dispatcher = RestDispatcher(receiver.url, username="admin", password="s3cret")
            first = dispatcher.dispatch(dag_id=DAG_ID, fingerprint=FINGERPRINT, conf=CONF)
            dispatcher.dispatch(dag_id=DAG_ID, fingerprint=FINGERPRINT, conf=CONF)
        assert first.created is True
        assert [d.path for d in receiver.deliveries] == [
            "/auth/token",
            f"/api/v2/dags/{DAG_ID}/dagRuns",
            f"/api/v2/dags/{DAG_ID}/dagRuns",
        ]
        assert receiver.deliveries[0].json() == {"username": "admin", "password": "s3cret"}
        assert (
            _header(receiver, 1, "Authorization") == _header(receiver, 2, "Authorization") == "Bearer jwt-1"
        )

    def test_expired_fetched_token_is_renewed_once(self) -> None:
        with http_receiver() as receiver:
            receiver.respond_next(201, *_json({"access_token": "jwt-1"}))
            receiver.respond_next(401, *_json({"detail": "Token Expired"}))
            receiver.respond_next(201, *_json({"access_token": "jwt-2"}))
            result = RestDispatcher(receiver.url, username="admin", password="s3cret").dispatch(
                dag_id=DAG_ID, fingerprint=FINGERPRINT, conf=CONF
            )
        assert result.created is True
        assert [d.path for d in receiver.deliveries].count("/auth/token") == 2
        assert _header(receiver, 3, "Authorization") == "Bearer jwt-2"

    def test_rejected_credentials_never_show_the_password(self) -> None:
        with http_receiver() as receiver:
            receiver.respond_next(401, *_json({"detail": "Invalid credentials"}))
            with pytest.raises(DispatchError, match="rejected the credentials of 'admin'") as caught:
                RestDispatcher(receiver.url, username="admin", password="s3cret").dispatch(
                    dag_id=DAG_ID, fingerprint=FINGERPRINT, conf=CONF
                )
        assert "s3cret" not in str(caught.value)
        assert [d.path for d in receiver.deliveries] == ["/auth/token"]

    def test_unreachable_server_is_an_error(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        with pytest.raises(
            DispatchError, match=f"could not reach the api-server at http://127.0.0.1:{port}/"
        ):
            RestDispatcher(f"http://127.0.0.1:{port}", timeout=2).dispatch(
                dag_id=DAG_ID, fingerprint=FINGERPRINT, conf=CONF
            )

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            pytest.param({"base_url": "127.0.0.1:8080"}, "base_url must be an http", id="no-scheme"),
            pytest.param({"base_url": "file:///etc/passwd"}, "base_url must be an http", id="file"),
            pytest.param({"base_url": "http://h", "username": "u"}, "go together", id="user-only"),
            pytest.param(
                {"base_url": "http://h", "token": "t", "username": "u", "password": "p"},
                "not both",
                id="both",
            ),
            pytest.param({"base_url": "http://h", "timeout": 0}, "timeout must be positive", id="timeout"),
        ],
    )
    def test_bad_settings_are_refused(self, kwargs: dict[str, Any], message: str) -> None:
        with pytest.raises(DispatchError, match=message):
            RestDispatcher(**kwargs)


class FakeHttp:
    """Stands for ``httpx.get``/``httpx.post``: answers from a script, records each request."""

    def __init__(self, *answers: tuple[int, Any]) -> None:
        self.answers = list(answers)
        self.requests: list[dict[str, Any]] = []

    def __call__(self, url: str, **kwargs: Any) -> Any:
        import httpx

        self.requests.append({"url": url, **kwargs})
        status, body = self.answers.pop(0)
        if isinstance(body, Exception):
            raise body
        if isinstance(body, str):
            return httpx.Response(status, text=body)
        return httpx.Response(status, json=body)


@pytest.fixture
def http(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FakeHttp, FakeHttp]]:
    import httpx

    get, post = FakeHttp(), FakeHttp()
    monkeypatch.setattr(httpx, "get", get)
    monkeypatch.setattr(httpx, "post", post)
    yield get, post
    assert get.answers == post.answers == []  # every scripted answer was asked for


class TestAirflowApiClient:
    PATH = "/api/v2/dags/~/dagRuns/~/taskInstances"

    def test_get_json_sends_the_token_and_the_params(self, http: tuple[FakeHttp, FakeHttp]) -> None:
        get, _ = http
        get.answers = [(200, {"task_instances": [], "total_entries": 0})]
        body = AirflowApiClient("http://api:8080/", token="jwt-abc").get_json(self.PATH, {"state": "failed"})
        assert body == {"task_instances": [], "total_entries": 0}
        (request,) = get.requests
        assert request["url"] == f"http://api:8080{self.PATH}"
        assert request["params"] == {"state": "failed"}
        assert request["headers"]["Authorization"] == "Bearer jwt-abc"

    def test_an_expired_fetched_token_is_renewed_once(self, http: tuple[FakeHttp, FakeHttp]) -> None:
        get, post = http
        post.answers = [(201, {"access_token": "jwt-1"}), (201, {"access_token": "jwt-2"})]
        get.answers = [(401, {"detail": "Token Expired"}), (200, {"ok": True})]
        client = AirflowApiClient("http://api", username="admin", password="s3cret")
        assert client.get_json(self.PATH) == {"ok": True}
        assert [r["headers"]["Authorization"] for r in get.requests] == ["Bearer jwt-1", "Bearer jwt-2"]
        assert [r["url"] for r in post.requests] == ["http://api/auth/token"] * 2

    @pytest.mark.parametrize(
        ("answer", "message"),
        [
            pytest.param((404, {"detail": "Not Found"}), "answered HTTP 404: .*Not Found", id="not-200"),
            pytest.param((200, "<html>login</html>"), "did not answer JSON", id="not-json"),
        ],
    )
    def test_a_bad_answer_is_a_backstop_error(
        self, http: tuple[FakeHttp, FakeHttp], answer: tuple[int, Any], message: str
    ) -> None:
        get, _ = http
        get.answers = [answer]
        with pytest.raises(BackstopError, match=f"GET {self.PATH} {message}"):
            AirflowApiClient("http://api").get_json(self.PATH)

    def test_unreachable_server_is_a_backstop_error(self, http: tuple[FakeHttp, FakeHttp]) -> None:
        import httpx

        get, _ = http
        get.answers = [(0, httpx.ConnectError("refused"))]
        with pytest.raises(
            BackstopError, match="could not reach the api-server at http://api/api/v2/.*ConnectError"
        ):
            AirflowApiClient("http://api").get_json(self.PATH)

    def test_rejected_credentials_never_show_the_password(self, http: tuple[FakeHttp, FakeHttp]) -> None:
        _, post = http
        post.answers = [(401, {"detail": "Invalid credentials"})]
        with pytest.raises(BackstopError, match="rejected the credentials of 'admin'") as caught:
            AirflowApiClient("http://api", username="admin", password="s3cret").get_json(self.PATH)
        assert "s3cret" not in str(caught.value)


class TestClientFromConnection:
    @staticmethod
    def _connection(monkeypatch: pytest.MonkeyPatch, **fields: Any) -> str:
        from airflow.models.connection import Connection

        monkeypatch.setenv(
            "AIRFLOW_CONN_SELFHEAL_API",
            Connection(conn_id="selfheal_api", conn_type="http", **fields).as_json(),
        )
        return "selfheal_api"

    @pytest.mark.parametrize(
        ("fields", "base_url"),
        [
            pytest.param(
                {"host": "api.internal", "port": 8080}, "http://api.internal:8080", id="host-and-port"
            ),
            pytest.param({"host": "api.internal", "schema": "https"}, "https://api.internal", id="schema"),
            pytest.param({"host": "https://api.internal/airflow/"}, "https://api.internal/airflow", id="url"),
            pytest.param(
                {"host": "http://api.internal:9090", "port": 8080}, "http://api.internal:9090", id="url-port"
            ),
        ],
    )
    def test_base_url(self, monkeypatch: pytest.MonkeyPatch, fields: dict[str, Any], base_url: str) -> None:
        client = client_from_connection(self._connection(monkeypatch, **fields), timeout=3)
        assert (client.base_url, client.timeout) == (base_url, 3)

    def test_an_extra_token_is_used_as_is(
        self, monkeypatch: pytest.MonkeyPatch, http: tuple[FakeHttp, FakeHttp]
    ) -> None:
        get, post = http
        get.answers = [(200, {})]
        conn_id = self._connection(
            monkeypatch, host="api", login="admin", password="pw", extra=json.dumps({"token": "jwt-x"})
        )
        client_from_connection(conn_id).get_json("/api/v2/version")
        assert get.requests[0]["headers"]["Authorization"] == "Bearer jwt-x"
        assert post.requests == []

    def test_login_and_password_fetch_a_token(
        self, monkeypatch: pytest.MonkeyPatch, http: tuple[FakeHttp, FakeHttp]
    ) -> None:
        get, post = http
        post.answers = [(201, {"access_token": "jwt-1"})]
        get.answers = [(200, {})]
        client_from_connection(
            self._connection(monkeypatch, host="api", login="admin", password="pw")
        ).get_json("/x")
        assert post.requests[0]["json"] == {"username": "admin", "password": "pw"}
        assert get.requests[0]["headers"]["Authorization"] == "Bearer jwt-1"

    def test_no_credentials_send_no_authorization(
        self, monkeypatch: pytest.MonkeyPatch, http: tuple[FakeHttp, FakeHttp]
    ) -> None:
        get, _ = http
        get.answers = [(200, {})]
        client_from_connection(self._connection(monkeypatch, host="api")).get_json("/x")
        assert "Authorization" not in get.requests[0]["headers"]

    def test_a_connection_without_host_is_refused(self, monkeypatch: pytest.MonkeyPatch) -> None:
        with pytest.raises(BackstopError, match="connection 'selfheal_api' has no host"):
            client_from_connection(self._connection(monkeypatch, login="admin"))


def test_import_loads_no_airflow_or_http_client() -> None:
    code = "import sys, json, airflow_selfheal.hooks.airflow_api; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    loaded = json.loads(out)
    assert [m for m in loaded if m.split(".")[0] in ("airflow", "httpx")] == []
