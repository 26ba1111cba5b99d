"""The verdict of triage: failure classes, the action each one calls for, and the upstream root cause."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from collections.abc import Mapping


class FailureClass(str, enum.Enum):
    """Stable failure codes; the values are part of the incident record and must never change."""

    COMPILE_ERROR = "compile_error"
    DEPENDENCY_ERROR = "dependency_error"
    MISSING_COLUMN = "missing_column"
    MISSING_RELATION = "missing_relation"
    TYPE_MISMATCH = "type_mismatch"
    TEST_UNIQUE = "test_unique"
    TEST_NOT_NULL = "test_not_null"
    TEST_ACCEPTED_VALUES = "test_accepted_values"
    TEST_RELATIONSHIPS = "test_relationships"
    TEST_SINGULAR = "test_singular"
    SOURCE_FRESHNESS = "source_freshness"
    TRANSIENT = "transient"
    PERMISSION = "permission"
    RESOURCE = "resource"
    UNKNOWN = "unknown"


class Action(str, enum.Enum):
    """What the repair DAG does next for a class of failure."""

    RETRY = "retry"
    REPAIR = "repair"
    ESCALATE = "escalate"


class Policy(NamedTuple):
    """The recommended action for a failure class and a one-line description of it for humans."""

    action: Action
    description: str


POLICIES: dict[FailureClass, Policy] = {
    FailureClass.COMPILE_ERROR: Policy(
        Action.REPAIR,
        "The model's Jinja, SQL or YAML does not compile or parse; the fix is in the project code.",
    ),
    FailureClass.DEPENDENCY_ERROR: Policy(
        Action.REPAIR, "A ref(), source() or package the node needs is missing from the dbt graph."
    ),
    FailureClass.MISSING_COLUMN: Policy(
        Action.REPAIR, "The SQL references a column that no longer exists upstream (renamed or dropped)."
    ),
    FailureClass.MISSING_RELATION: Policy(
        Action.REPAIR, "The SQL references a table or view that does not exist or is not visible to the role."
    ),
    FailureClass.TYPE_MISMATCH: Policy(
        Action.REPAIR,
        "A value does not fit the type, format, length or range the SQL needs; often an upstream type change.",
    ),
    FailureClass.TEST_UNIQUE: Policy(Action.REPAIR, "A unique test found duplicate keys."),
    FailureClass.TEST_NOT_NULL: Policy(Action.REPAIR, "A not_null test found null values."),
    FailureClass.TEST_ACCEPTED_VALUES: Policy(
        Action.REPAIR, "An accepted_values test found a value outside the declared list."
    ),
    FailureClass.TEST_RELATIONSHIPS: Policy(
        Action.REPAIR, "A relationships test found keys with no parent row (orphans)."
    ),
    FailureClass.TEST_SINGULAR: Policy(
        Action.ESCALATE, "A custom data test failed; its intent is business logic that needs a person."
    ),
    FailureClass.SOURCE_FRESHNESS: Policy(
        Action.ESCALATE, "A source is stale; the data is late upstream, which no model change can fix."
    ),
    FailureClass.TRANSIENT: Policy(
        Action.RETRY, "A network, timeout, lock or warehouse-availability error; retry without code changes."
    ),
    FailureClass.PERMISSION: Policy(
        Action.ESCALATE, "The role lacks a privilege or the login failed; an administrator must grant access."
    ),
    FailureClass.RESOURCE: Policy(
        Action.RETRY,
        "Out of memory, disk or killed by the system; retry once, and escalate if it happens again."
        " A quota or a size limit escalates at once.",
    ),
    FailureClass.UNKNOWN: Policy(
        Action.ESCALATE, "The error matched no known pattern; a person must read the logs."
    ),
}

ROOT_CAUSE_KINDS = (
    "upstream_rename",
    "upstream_column_removed",
    "upstream_type_change",
    "upstream_table_removed",
)


@dataclass(frozen=True)
class RootCause:
    """
    The upstream schema change that explains a failure, found by correlating the error with drift events.

    .. code-block:: python

        cause = RootCause(
            kind="upstream_column_removed",
            message="Upstream column removed: RAW.ORDERS.CUSTOMER_EMAIL.",
            evidence={"kind": "column_removed", "table": "RAW.ORDERS", "column": "CUSTOMER_EMAIL"},
        )

    :param kind: one of :data:`ROOT_CAUSE_KINDS`.
    :param message: one human sentence naming the change.
    :param evidence: the drift event (as a dict) that explains the failure.
    """

    kind: str
    message: str
    evidence: Mapping[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """
        Serialise to a JSON-compatible dict.

        :return: ``kind``, ``message`` and a plain-dict copy of ``evidence``.
        """
        return {"kind": self.kind, "message": self.message, "evidence": dict(self.evidence)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RootCause:
        """
        Rebuild a root cause from :meth:`to_dict` output.

        :param data: the dict.
        :return: the root cause.
        """
        return cls(
            kind=str(data["kind"]), message=str(data["message"]), evidence=dict(data.get("evidence") or {})
        )


@dataclass(frozen=True)
class Triage:
    r"""
    The verdict on one failure: its class, what to do, and the evidence for both.

    .. code-block:: python

        triage = classify("000904 (42000): SQL compilation error: error line 3 at position 4\n"
                          "invalid identifier 'CUSTOMER_EMAIL'")
        assert triage.failure_class is FailureClass.MISSING_COLUMN
        assert triage.action is Action.REPAIR
        assert triage.identifiers[0] == "CUSTOMER_EMAIL"

    :param failure_class: the class.
    :param action: the recommended action, from :data:`POLICIES`.
    :param summary: one human line, e.g. ``Column CUSTOMER_EMAIL referenced by stg_orders no longer exists.``
    :param identifiers: the column, relation, value or node names in the error, most useful first; Snowflake
        identifiers are upper-cased unless they were quoted.
    :param error_code: the Snowflake or fakesnow code, e.g. ``000904``, when the text has one.
    :param matched_rule: the id of the rule that decided the class, for explainability.
    :param root_cause: the upstream change that explains the failure, when drift correlation found one.
    :param signal: what decided the class, for a person: ``code 100038``, ``sqlstate 22018``,
        ``run_results status=fail``, ``pattern sf_invalid_identifier``; ``none`` when nothing did.
    :param confidence: how far that signal can be trusted, from 0 (nothing recognised) to 1: a code or
        dbt's own status 0.95, a specific wording 0.85, a SQLSTATE class 0.75, a wrapper such as
        ``Compilation Error`` 0.6.
    """

    failure_class: FailureClass
    action: Action
    summary: str
    identifiers: tuple[str, ...] = ()
    error_code: str | None = None
    matched_rule: str = "none"
    root_cause: RootCause | None = None
    signal: str = "none"
    confidence: float = 0.0

    @property
    def description(self) -> str:
        """The class's one-line description and the reason for the action, from :data:`POLICIES`."""
        return POLICIES[self.failure_class].description

    def to_dict(self) -> dict[str, Any]:
        """
        Serialise to a JSON-compatible dict; enums become their string values.

        :return: every field plus the derived ``description``.
        """
        return {
            "failure_class": self.failure_class.value,
            "action": self.action.value,
            "summary": self.summary,
            "identifiers": list(self.identifiers),
            "error_code": self.error_code,
            "matched_rule": self.matched_rule,
            "root_cause": None if self.root_cause is None else self.root_cause.to_dict(),
            "signal": self.signal,
            "confidence": self.confidence,
            "description": self.description,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Triage:
        """
        Rebuild a triage from :meth:`to_dict` output; ``description`` is derived, so it is not read.

        :param data: the dict.
        :return: the triage.
        """
        root_cause = data.get("root_cause")
        error_code = data.get("error_code")
        return cls(
            failure_class=FailureClass(data["failure_class"]),
            action=Action(data["action"]),
            summary=str(data["summary"]),
            identifiers=tuple(str(item) for item in data.get("identifiers") or ()),
            error_code=None if error_code is None else str(error_code),
            matched_rule=str(data.get("matched_rule", "none")),
            root_cause=None if root_cause is None else RootCause.from_dict(root_cause),
            signal=str(data.get("signal") or "none"),
            confidence=float(data.get("confidence") or 0.0),
        )
