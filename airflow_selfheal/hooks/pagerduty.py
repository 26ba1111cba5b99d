"""PagerDuty Events v2 delivery with a configurable endpoint, retries and no secret in any error.

The provider's ``PagerdutyEventsHook`` goes through the ``pagerduty`` client, which only accepts https base
URLs and does not retry. We reuse the provider's payload builder (``prepare_event_data``) and post it
ourselves, so the endpoint can be a regional one, a proxy, or a loopback receiver in tests.
"""

from __future__ import annotations

import time
from functools import cached_property
from typing import Any

from airflow.providers.common.compat.sdk import BaseHook

DEFAULT_ENDPOINT = "https://events.pagerduty.com"
RETRYABLE = frozenset({429, 500, 502, 503, 504})


class DeliveryError(RuntimeError):
    """A notification could not be delivered; the message carries the status, never a secret."""

    def __init__(self, message: str, *, status: int | None = None, retryable: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.retryable = retryable


class SelfhealPagerdutyEventsHook(BaseHook):
    """
    Send PagerDuty Events v2 (trigger, acknowledge, resolve).

    The connection is the provider's ``pagerduty_events`` type: the integration (routing) key is the password.
    Its ``host``, when set (``https://events.eu.pagerduty.com``, ``http://127.0.0.1:9000``), replaces the
    default endpoint.

    .. code-block:: python

        hook = SelfhealPagerdutyEventsHook(pagerduty_events_conn_id="pagerduty_events_default")
        hook.send_event(summary="dbt run failed", severity="error", dedup_key=fingerprint)

    :param pagerduty_events_conn_id: Airflow connection id.
    :param max_attempts: attempts on 429, 5xx and network errors; a 4xx other than 429 is never retried.
    :param backoff: first wait in seconds, doubled on each retry (a ``Retry-After`` header wins, up to 30s).
    :param timeout: per-request timeout in seconds.
    """

    conn_name_attr = "pagerduty_events_conn_id"
    default_conn_name = "pagerduty_events_default"
    conn_type = "pagerduty_events"
    hook_name = "PagerDuty Events (selfheal)"

    def __init__(
        self,
        pagerduty_events_conn_id: str = default_conn_name,
        *,
        max_attempts: int = 4,
        backoff: float = 0.5,
        timeout: float = 10.0,
    ) -> None:
        super().__init__()
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.pagerduty_events_conn_id = pagerduty_events_conn_id
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.timeout = timeout

    @cached_property
    def _settings(self) -> tuple[str, str]:
        conn = self.get_connection(self.pagerduty_events_conn_id)
        routing_key = (conn.password or "").strip()
        if not routing_key:
            raise DeliveryError(
                f"PagerDuty connection {self.pagerduty_events_conn_id!r} has no integration key. "
                "Fix: put the Events v2 integration key in the connection's password field."
            )
        host = (conn.host or "").strip()
        if host and "://" not in host:
            host = f"{conn.schema or 'https'}://{host}"
        if host and conn.port:
            host = f"{host.rstrip('/')}:{conn.port}"
        return routing_key, (host or DEFAULT_ENDPOINT).rstrip("/")

    @property
    def endpoint(self) -> str:
        """The enqueue URL events are posted to."""
        return f"{self._settings[1]}/v2/enqueue"

    def send_event(self, **event: Any) -> dict[str, Any]:
        """
        Post one event built by the provider's ``prepare_event_data`` from ``event``.

        :return: PagerDuty's JSON answer (``status``, ``message``, ``dedup_key``).
        """
        from airflow.providers.pagerduty.hooks.pagerduty_events import prepare_event_data

        routing_key, _ = self._settings
        # Events API v2 names the action `event_action`; the provider's helper defaults to `action`.
        body = {**prepare_event_data(**event, action_key_name="event_action"), "routing_key": routing_key}
        return self._post(body)

    def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        import requests

        last: DeliveryError | None = None
        for attempt in range(1, self.max_attempts + 1):
            wait = self.backoff * (2 ** (attempt - 1))
            try:
                response = requests.post(self.endpoint, json=body, timeout=self.timeout)
            except requests.RequestException as exc:
                last = DeliveryError(
                    f"PagerDuty unreachable at {self.endpoint}: {type(exc).__name__}", retryable=True
                )
            else:
                if response.status_code < 300:
                    try:
                        answer: dict[str, Any] = response.json()
                    except ValueError:
                        answer = {"status": "success"}
                    return answer
                retryable = response.status_code in RETRYABLE
                last = DeliveryError(
                    f"PagerDuty answered {response.status_code}: {response.text[:300]}",
                    status=response.status_code,
                    retryable=retryable,
                )
                retry_after = response.headers.get("Retry-After", "")
                if retry_after.isdigit():
                    wait = min(float(retry_after), 30.0)
            if not last.retryable or attempt == self.max_attempts:
                break
            self.log.warning(
                "PagerDuty delivery attempt %s failed (%s); retrying in %.1fs", attempt, last, wait
            )
            time.sleep(wait)
        assert last is not None  # noqa: S101 - the loop always sets it before breaking
        raise last
