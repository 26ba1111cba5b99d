"""
Deterministic fix rules: turn a triaged failure into a patch of full replacement files, or an escalation.

:func:`propose_fix` picks at most one rule from the triage and applies it to the sandbox copy of the dbt project
(``project_files``; the caller does the I/O). The rules, in priority order, closest to the data contract first
(schema corrections, then input tightening, then tests and expectations; transform logic is left to a person
or the LLM step):

1. ``column_rename`` (an upstream rename): the models and singular tests that read the source directly read
   the new column. A bare ``OLD`` in a select list becomes ``NEW as OLD``, so every output name stays and
   downstream is untouched. The source YAML's column entry is renamed too.
2. ``type_cast`` (an upstream type change): every reference in those models becomes
   ``try_cast(COL as <old type>)`` (``cast`` when the new type is not a string: Snowflake's ``TRY_CAST``
   takes only strings), keeping the output name.
3. ``drop_unused_column`` (an upstream removal): the select-list entries reading the column are removed,
   but only if nothing downstream reads what they produced; otherwise it escalates naming the users.
4. ``source_table_rename``: the source's ``identifier`` is set to the new table name.
5. ``dedup`` (a failed ``unique`` test on a staging model): a ``qualify row_number() ... = 1`` keeps the
   most recently loaded row per key.
6. ``accepted_values`` (a new enum value): the values the failed test returned are added to its list.

Each plan also adds a **guard test**, a singular test under the project's test path named
``selfheal_guard_*`` that would have caught the failure at the source, and explains it in the rationale.

SQL is edited through sqlglot, never by text substitution. A model's Jinja is masked first: ``{{ ... }}``
becomes an identifier placeholder (``{{ config(...) }}`` a comment), and ``{% if %}``, ``{% set x = ... %}``
and ``{# ... #}`` become comments; loops, macros and other blocks make the rule escalate, because they
generate SQL the parser cannot see. The masked SQL is parsed with the Snowflake dialect and columns are
resolved through sqlglot's scopes: only columns that resolve to the source (unqualified in a scope reading
only it, qualified by its alias, or reached through a CTE or subquery that passes it on with ``*``) change.
The edits are then applied at the tokens' exact positions, so comments, layout and Jinja stay as written and
the diff is as small as the change. The edited SQL is parsed again and must equal the parsed original with the
same change made on its tree; any mismatch, parse failure or ambiguity escalates.

YAML is edited the same way: positions come from the composed node tree, the edit is a minimal text change
that keeps comments and layout, and ``yaml.safe_load`` of the result must equal the loaded original with the
same change made on the data.

.. code-block:: python

    outcome = propose_fix(
        triage=triage.to_dict(),
        incident=incident.to_dict(),
        project_files=sandbox_files,
        manifest=manifest,
        rules=load_rules(sandbox_files.get(RULES_FILE)),
    )
    if isinstance(outcome, Escalation):
        page(outcome.reason)
    else:
        write_files(outcome.changes)
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import yaml

from airflow_selfheal.core.drift import DriftEvent, normalize_type
from airflow_selfheal.core.identifiers import quote_identifier
from airflow_selfheal.core.manifest import ManifestError, check_manifest, downstream
from airflow_selfheal.core.rules import FIX_TYPES, RULES_FILE, TIERS, RulesConfig

if TYPE_CHECKING:
    from sqlglot import exp
    from sqlglot.optimizer.scope import Scope

DIALECT = "snowflake"
GUARD_PREFIX = "selfheal_guard_"
DEFAULT_TEST_PATH = "tests"
# Resource types whose SQL reads a source the way a model does; their files are rewritten with the model.
_SQL_READERS = ("model", "snapshot")


# ---------------------------------------------------------------------------------------------------------------
# Public model
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FixPlan:
    """
    A proposed patch: full replacement files plus the reasoning a reviewer needs.

    .. code-block:: python

        plan = FixPlan(
            fix_type="column_rename",
            tier="auto",
            rationale="raw.orders.CUSTOMER_EMAIL was renamed to CONTACT_EMAIL ...",
            changes={"models/staging/stg_orders.sql": new_sql, "tests/selfheal_guard_raw_orders_columns.sql": guard},
            guard_tests={"tests/selfheal_guard_raw_orders_columns.sql": guard},
            priority=1,
        )

    :param fix_type: one of :data:`~airflow_selfheal.core.rules.FIX_TYPES`.
    :param tier: ``auto`` or ``review`` (shown in the page), from the rules file.
    :param rationale: human text naming the evidence, the change and the guard test.
    :param changes: project-relative path to the file's complete new text; guard tests included.
    :param guard_tests: the added guard tests, path to text; each is also in ``changes``.
    :param priority: 1 for the fix closest to the data contract; the position in ``FIX_TYPES``.
    """

    fix_type: str
    tier: str
    rationale: str
    changes: Mapping[str, str]
    guard_tests: Mapping[str, str]
    priority: int

    def __post_init__(self) -> None:
        if self.fix_type not in FIX_TYPES:
            raise ValueError(f"fix_type must be one of {FIX_TYPES}, got {self.fix_type!r}")
        if self.tier not in TIERS:
            raise ValueError(f"tier must be one of {TIERS}, got {self.tier!r}")
        object.__setattr__(self, "changes", dict(self.changes))
        object.__setattr__(self, "guard_tests", dict(self.guard_tests))
        for path, text in self.guard_tests.items():
            if self.changes.get(path) != text:
                raise ValueError(f"guard test {path} must also be in changes, with the same text")

    def to_dict(self) -> dict[str, Any]:
        """
        Serialise to a JSON-compatible dict, e.g. for XCom.

        :return: every field; ``kind`` is ``fix_plan``.
        """
        return {
            "kind": "fix_plan",
            "fix_type": self.fix_type,
            "tier": self.tier,
            "rationale": self.rationale,
            "changes": dict(self.changes),
            "guard_tests": dict(self.guard_tests),
            "priority": self.priority,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FixPlan:
        """
        Rebuild a plan from :meth:`to_dict` output.

        :param data: the dict.
        :return: the plan.
        """
        return cls(
            fix_type=str(data["fix_type"]),
            tier=str(data["tier"]),
            rationale=str(data["rationale"]),
            changes={str(path): str(text) for path, text in data["changes"].items()},
            guard_tests={str(path): str(text) for path, text in data["guard_tests"].items()},
            priority=int(data["priority"]),
        )


@dataclass(frozen=True)
class Escalation:
    """
    No deterministic fix: a person (or the LLM step) must take over, for the stated reason.

    .. code-block:: python

        outcome = propose_fix(...)
        if isinstance(outcome, Escalation):
            log.warning("escalating: %s", outcome.reason)

    :param reason: one or two human sentences naming what blocked the rule (a model, a path, a user).
    :param fix_type: the rule that was tried, when one applied.
    """

    reason: str
    fix_type: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """
        Serialise to a JSON-compatible dict, e.g. for XCom.

        :return: ``kind`` (``escalation``), ``reason`` and ``fix_type``.
        """
        return {"kind": "escalation", "reason": self.reason, "fix_type": self.fix_type}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Escalation:
        """
        Rebuild an escalation from :meth:`to_dict` output.

        :param data: the dict.
        :return: the escalation.
        """
        fix_type = data.get("fix_type")
        return cls(reason=str(data["reason"]), fix_type=None if fix_type is None else str(fix_type))


class _Escalate(Exception):
    """Raised inside a rule; :func:`propose_fix` turns it into an :class:`Escalation`."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class _Draft:
    rationale: list[str]
    changes: dict[str, str] = field(default_factory=dict)
    guard_tests: dict[str, str] = field(default_factory=dict)

    def add_guard(self, path: str, text: str) -> None:
        self.changes[path] = text
        self.guard_tests[path] = text


# ---------------------------------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------------------------------


def propose_fix(
    *,
    triage: Mapping[str, Any],
    incident: Mapping[str, Any],
    project_files: Mapping[str, str],
    manifest: Mapping[str, Any],
    rules: RulesConfig,
    failing_rows: Sequence[Mapping[str, Any]] = (),
) -> FixPlan | Escalation:
    """
    Choose and apply the deterministic rule for a failure, or say why none applies.

    Pure: reads only its arguments. The rule comes from the triage: its ``root_cause`` (an upstream rename,
    type change, column removal or table rename) or else its failure class (``test_unique``,
    ``test_accepted_values``). A rule not listed in ``auto_propose``, a protected model, a path outside
    ``allowed_paths``, SQL the rewriter cannot parse or resolve with certainty, or a removed column still in
    use all give an :class:`Escalation`.

    :param triage: ``Triage.to_dict()`` of the failure.
    :param incident: ``Incident.to_dict()``; its ``incident_id`` and failing ``nodes`` are read.
    :param project_files: project-relative path to text for the sandbox copy of the dbt project: at least the
        SQL and YAML files the rule reads, and ``dbt_project.yml`` for the test path.
    :param manifest: the project's ``manifest.json`` (nodes, sources, child_map).
    :param rules: from :func:`~airflow_selfheal.core.rules.load_rules`.
    :param failing_rows: the rows the failed data test returned when re-run read-only on the clone (its
        compiled SQL); ``accepted_values`` reads their ``value_field`` (any case) to learn the new values.
    :return: a :class:`FixPlan`, or an :class:`Escalation` naming what blocked it.
    """
    try:
        fix_type = _choose_rule(triage)
    except _Escalate as exc:
        return Escalation(exc.reason)
    if not rules.allows(fix_type):
        return Escalation(
            f"a {fix_type} fix applies, but auto_propose in {RULES_FILE} does not list {fix_type}", fix_type
        )
    try:
        context = _Context.build(incident, project_files, manifest, rules)
        draft = _RULES[fix_type](context, triage, failing_rows)
        if not draft.changes:
            raise _Escalate(f"the {fix_type} rule found nothing to change")
        for path in sorted(draft.changes):
            if not rules.is_path_allowed(path):
                raise _Escalate(
                    f"the {fix_type} fix would change {path}, which allowed_paths in {RULES_FILE} does not allow"
                )
    except _Escalate as exc:
        return Escalation(exc.reason, fix_type)
    return FixPlan(
        fix_type=fix_type,
        tier=rules.tier(fix_type),
        rationale="\n".join(draft.rationale),
        changes=dict(sorted(draft.changes.items())),
        guard_tests=dict(sorted(draft.guard_tests.items())),
        priority=FIX_TYPES.index(fix_type) + 1,
    )


def _choose_rule(triage: Mapping[str, Any]) -> str:
    root_cause = triage.get("root_cause") or {}
    kind = root_cause.get("kind")
    evidence = root_cause.get("evidence") or {}
    if kind == "upstream_rename":
        return "column_rename"
    if kind == "upstream_type_change":
        return "type_cast"
    if kind == "upstream_column_removed":
        return "drop_unused_column"
    if kind == "upstream_table_removed":
        if evidence.get("kind") == "table_renamed" and evidence.get("new_table"):
            return "source_table_rename"
        raise _Escalate(
            f"no deterministic rule for upstream_table_removed: {root_cause.get('message') or 'a table is gone'}"
        )
    failure_class = str(triage.get("failure_class") or "unknown")
    if failure_class == "test_unique":
        return "dedup"
    if failure_class == "test_accepted_values":
        return "accepted_values"
    raise _Escalate(f"no deterministic rule for {failure_class}")


# ---------------------------------------------------------------------------------------------------------------
# Context: the manifest, the sandbox files and the rules
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Source:
    unique_id: str
    source_name: str
    name: str
    schema: str
    identifier: str
    yaml_path: str
    loaded_at_field: str | None

    @property
    def label(self) -> str:
        return f"{self.source_name}.{self.name}"

    @property
    def jinja(self) -> str:
        return f"{{{{ source('{self.source_name}', '{self.name}') }}}}"


@dataclass(frozen=True)
class _Context:
    manifest: dict[str, Any]
    files: Mapping[str, str]
    rules: RulesConfig
    incident_id: str
    incident_nodes: tuple[Mapping[str, Any], ...]
    test_path: str

    @classmethod
    def build(
        cls,
        incident: Mapping[str, Any],
        project_files: Mapping[str, str],
        manifest: Mapping[str, Any],
        rules: RulesConfig,
    ) -> _Context:
        try:
            checked = check_manifest(dict(manifest))
        except ManifestError as exc:
            raise _Escalate(str(exc)) from None
        nodes = tuple(item for item in incident.get("nodes") or () if isinstance(item, Mapping))
        return cls(
            manifest=checked,
            files=project_files,
            rules=rules,
            incident_id=str(incident.get("incident_id") or "this incident"),
            incident_nodes=nodes,
            test_path=_test_path(project_files.get("dbt_project.yml")),
        )

    def read(self, path: str) -> str:
        text = self.files.get(path)
        if text is None:
            raise _Escalate(f"{path} is not in the sandbox copy of the project")
        return text

    def node(self, unique_id: str) -> dict[str, Any] | None:
        found = self.manifest["nodes"].get(unique_id) or self.manifest["sources"].get(unique_id)
        return found if isinstance(found, dict) else None

    def children(self, unique_id: str) -> tuple[str, ...]:
        return downstream(self.manifest, unique_id)

    def check_editable(self, node: Mapping[str, Any]) -> None:
        if node.get("resource_type") in _SQL_READERS and self.rules.is_protected(str(node.get("name"))):
            raise _Escalate(
                f"model {node.get('name')} is protected (protected_models in {RULES_FILE}); "
                "a person must change it"
            )

    def find_source(self, table_key: str) -> _Source:
        # ``TABLE``, ``SCHEMA.TABLE`` or ``DATABASE.SCHEMA.TABLE``, matched by its trailing parts.
        wanted = table_key.replace('"', "").casefold().split(".")
        found = []
        for unique_id, source in sorted(self.manifest["sources"].items()):
            if not isinstance(source, dict):
                continue
            identifier = source.get("identifier") or source.get("name")
            key = f"{source.get('database')}.{source.get('schema')}.{identifier}".replace('"', "").casefold()
            if key.split(".")[-len(wanted) :] == wanted:
                found.append((unique_id, source))
        if not found:
            raise _Escalate(f"no dbt source in the manifest is the table {table_key}")
        if len(found) > 1:
            names = ", ".join(unique_id for unique_id, _ in found)
            raise _Escalate(f"several dbt sources match {table_key} ({names}); which one changed is unclear")
        return self.source(found[0][0])

    def source(self, unique_id: str) -> _Source:
        source = self.manifest["sources"].get(unique_id)
        if not isinstance(source, dict):
            raise _Escalate(f"the manifest has no source {unique_id}")
        config: dict[str, Any] = source["config"] if isinstance(source.get("config"), dict) else {}
        loaded_at = source.get("loaded_at_field") or config.get("loaded_at_field")
        return _Source(
            unique_id=unique_id,
            source_name=str(source.get("source_name")),
            name=str(source.get("name")),
            schema=str(source.get("schema")),
            identifier=str(source.get("identifier") or source.get("name")),
            yaml_path=str(source.get("original_file_path")),
            loaded_at_field=None if not loaded_at else str(loaded_at),
        )

    def direct_readers(self, source: _Source) -> list[dict[str, Any]]:
        """Models, snapshots and singular tests that select from the source itself."""
        readers = []
        for child_id in self.children(source.unique_id):
            child = self.node(child_id)
            if child is None:
                continue
            resource_type = child.get("resource_type")
            if resource_type in _SQL_READERS or (resource_type == "test" and not child.get("test_metadata")):
                readers.append(child)
        return readers

    def guard_path(self, *parts: str) -> str:
        slug = re.sub(r"[^a-z0-9]+", "_", "_".join(parts).lower()).strip("_")
        return f"{self.test_path}/{GUARD_PREFIX}{slug}.sql"


def _test_path(project_yaml: str | None) -> str:
    """The first of ``test-paths`` in ``dbt_project.yml``, ``tests`` by default."""
    try:
        data = yaml.safe_load(project_yaml) if project_yaml else None
    except yaml.YAMLError:
        return DEFAULT_TEST_PATH
    paths = data.get("test-paths") if isinstance(data, dict) else None
    if isinstance(paths, list) and paths and isinstance(paths[0], str):
        parts = [part for part in paths[0].strip().split("/") if part not in ("", ".")]
        if parts and ".." not in parts:
            return "/".join(parts)
    return DEFAULT_TEST_PATH


def _path_of(node: Mapping[str, Any]) -> str:
    path = node.get("original_file_path")
    if not path:
        raise _Escalate(f"the manifest gives no file for {node.get('unique_id')}")
    return str(path)


def _yaml_path_of(node: Mapping[str, Any]) -> str | None:
    """A model's properties file, from ``patch_path`` (``project://models/x.yml``)."""
    patch_path = node.get("patch_path")
    if not patch_path:
        return None
    return str(patch_path).split("://", 1)[-1]


def _evidence_message(evidence: Mapping[str, Any]) -> str:
    try:
        return DriftEvent.from_dict(evidence).message
    except (KeyError, TypeError, ValueError):
        return str(evidence.get("message") or evidence)


def _one_line(value: Any) -> str:
    return " ".join(str(value).split())


def _names(items: Sequence[str]) -> str:
    return ", ".join(items)


# ---------------------------------------------------------------------------------------------------------------
# Identifiers
# ---------------------------------------------------------------------------------------------------------------

_PLAIN_STORED = re.compile(r"[A-Z_][A-Z0-9_$]*")


def _stored(identifier: exp.Identifier) -> str:
    """Snowflake's stored form: unquoted names fold to upper case."""
    return str(identifier.this) if identifier.quoted else str(identifier.this).upper()


def _spell(stored: str, like: str) -> str:
    """Write a stored-form name in the style of an existing one: same quoting, same case for plain names."""
    if like.startswith('"') or not _PLAIN_STORED.fullmatch(stored):
        return quote_identifier(stored)
    return stored.lower() if like == like.lower() else stored


def _sql_name(stored: str) -> str:
    """A stored-form name for new SQL: bare when Snowflake would fold it to itself, else quoted."""
    return stored if _PLAIN_STORED.fullmatch(stored) else quote_identifier(stored)


def _mentions(text: str, stored: str) -> bool:
    """Whether a name occurs as a word anywhere in a file (a cheap pre-check, never used to edit)."""
    flags = 0 if not _PLAIN_STORED.fullmatch(stored) else re.IGNORECASE
    return re.search(rf"(?<![\w$]){re.escape(stored)}(?![\w$])", text, flags) is not None


# ---------------------------------------------------------------------------------------------------------------
# Jinja masking
# ---------------------------------------------------------------------------------------------------------------

_PLACEHOLDER_PREFIX = "__selfheal_jinja_"
_JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.DOTALL)
_JINJA_TAG = re.compile(r"\{%-?\s*(\w+)")
_SOURCE_CALL = re.compile(
    r"""\{\{-?\s*source\(\s*(['"])([^'"]+)\1\s*,\s*(['"])([^'"]+)\3\s*\)\s*-?\}\}""", re.DOTALL
)
_CONFIG_CALL = re.compile(r"\{\{-?\s*config\s*\(", re.DOTALL)
# Tags that render no SQL of their own, or select between branches that are each plain SQL.
_SAFE_TAGS = frozenset({"if", "elif", "else", "endif", "set", "do"})
# Macros that expand to the columns of a relation; with one in a select list, the column list is unknowable.
_EXPANDING_MACRO = re.compile(r"\bstar\s*\(|\bsource\s*\(|\bref\s*\(|\*")


@dataclass(frozen=True)
class _Masked:
    """A file's SQL with its Jinja replaced by placeholders that sqlglot parses, and the way back."""

    path: str
    text: str
    segments: dict[str, str]  # placeholder text -> the Jinja it stands for
    sources: dict[str, tuple[str, str]]  # identifier placeholder (lower case) -> (source name, table name)
    expressions: dict[str, str]  # identifier placeholder (lower case) -> Jinja expression

    def unmask(self, text: str, overrides: Mapping[str, str] | None = None) -> str:
        for placeholder, jinja in self.segments.items():
            if text.count(placeholder) != 1:
                raise _Escalate(f"rewriting {self.path} would lose or repeat the Jinja {_one_line(jinja)!r}")
            text = text.replace(placeholder, (overrides or {}).get(placeholder, jinja))
        return text

    def restore(self, text: str) -> str:
        """Put back the Jinja of any placeholders in a fragment built from this file's SQL."""
        for placeholder, jinja in self.segments.items():
            text = text.replace(placeholder, jinja)
        return text

    def spans(self) -> list[tuple[int, int]]:
        spans = []
        for placeholder in self.segments:
            start = self.text.find(placeholder)
            spans.append((start, start + len(placeholder)))
        return spans


def _mask(text: str, path: str) -> _Masked:
    if _PLACEHOLDER_PREFIX in text:
        raise _Escalate(f"{path} already contains {_PLACEHOLDER_PREFIX}; it cannot be masked safely")
    segments: dict[str, str] = {}
    sources: dict[str, tuple[str, str]] = {}
    expressions: dict[str, str] = {}
    out: list[str] = []
    position = 0
    for number, match in enumerate(_JINJA.finditer(text)):
        jinja = match.group(0)
        name = f"{_PLACEHOLDER_PREFIX}{number}__"
        if jinja.startswith("{%"):
            tag_match = _JINJA_TAG.match(jinja)
            tag = tag_match.group(1).lower() if tag_match else ""
            if tag not in _SAFE_TAGS or (tag == "set" and "=" not in jinja):
                raise _Escalate(
                    f"{path} uses the Jinja block {{% {tag or '?'} %}}, which generates SQL the rewriter "
                    "cannot see; a person must change it"
                )
            placeholder = f"/*{name}*/"
        elif jinja.startswith("{#") or _CONFIG_CALL.match(jinja):
            placeholder = f"/*{name}*/"
        else:
            placeholder = name
            expressions[name.lower()] = jinja
            source = _SOURCE_CALL.fullmatch(jinja)
            if source is not None:
                sources[name.lower()] = (source.group(2), source.group(4))
        segments[placeholder] = jinja
        out.append(text[position : match.start()])
        out.append(placeholder)
        position = match.end()
    out.append(text[position:])
    masked = "".join(out)
    if any(marker in masked for marker in ("{{", "}}", "{%", "%}", "{#", "#}")):
        raise _Escalate(f"{path} has Jinja delimiters that do not pair up; it cannot be masked safely")
    return _Masked(path, masked, segments, sources, expressions)


# ---------------------------------------------------------------------------------------------------------------
# SQL: parsing, scopes and column resolution
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class _Sql:
    node: Mapping[str, Any]
    path: str
    text: str
    masked: _Masked
    tree: exp.Query

    @property
    def name(self) -> str:
        return str(self.node.get("name"))

    def written(self, start: int, end: int) -> str:
        return self.masked.text[start:end]


def _parse(text: str, path: str) -> exp.Query:
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import SqlglotError

    try:
        statements = [statement for statement in sqlglot.parse(text, read=DIALECT) if statement is not None]
    except SqlglotError as exc:
        detail = _one_line(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)[:200]
        raise _Escalate(
            f"{path} does not parse as Snowflake SQL once its Jinja is masked ({detail}); "
            "the rewriter never falls back to text replacement"
        ) from None
    if len(statements) != 1 or not isinstance(statements[0], exp.Query):
        raise _Escalate(f"{path} is not a single select statement once its Jinja is masked")
    return statements[0]


def _load_sql(context: _Context, node: Mapping[str, Any], text: str | None = None) -> _Sql:
    path = _path_of(node)
    if node.get("language", "sql") != "sql" or not path.endswith(".sql"):
        raise _Escalate(f"{path} is not a SQL file; the rules rewrite only SQL")
    body = context.read(path) if text is None else text
    masked = _mask(body, path)
    return _Sql(node, path, body, masked, _parse(masked.text, path))


def _canonical(tree: exp.Expr) -> str:
    return tree.sql(dialect=DIALECT, comments=False)


_MACRO_CALL = re.compile(r"\{\{-?\s*(?P<name>[A-Za-z_][\w.]*)\s*\((?P<args>[^{}]*)\)\s*-?\}\}", re.DOTALL)
_STRING_ARGUMENT = re.compile(r"(?P<quote>['\"])(?P<value>[A-Za-z_][\w$]*)(?P=quote)")
# Calls whose string arguments name relations or settings, never a column of the current query.
_NOT_COLUMN_MACROS = frozenset({"source", "ref", "config", "var", "env_var", "this", "is_incremental"})


def _macro_column_arguments(jinja: str, stored: str) -> list[tuple[int, int]] | None:
    """
    The ``[start, end)`` spans (inside ``jinja``) of the string arguments naming the column, e.g. ``'amount_cents'``.

    :return: None unless ``jinja`` is one macro call whose every mention of the column is such an argument.
    """
    call = _MACRO_CALL.fullmatch(jinja.strip())
    if call is None or call.group("name").rsplit(".", 1)[-1].lower() in _NOT_COLUMN_MACROS:
        return None
    # Only a flat argument list: a nested call or a list (``star(source(...), except=[...])``) may mean anything.
    if any(marker in call.group("args") for marker in "([{") or _EXPANDING_MACRO.search(jinja):
        return None
    offset = jinja.index(jinja.strip()) + call.start("args")
    spans = [
        (offset + found.start("value"), offset + found.end("value"))
        for found in _STRING_ARGUMENT.finditer(call.group("args"))
        if found.group("value").upper() == stored.upper()
    ]
    mentions = len(re.findall(rf"(?<![\w$]){re.escape(stored)}(?![\w$])", jinja, re.IGNORECASE))
    return spans if spans and len(spans) == mentions else None


def _edit_macro_arguments_to(analysis: _Analysis, placeholder: str, replacement: str) -> str:
    """One recorded macro use's Jinja with its column arguments replaced by ``replacement``."""
    jinja = analysis.sql.masked.segments[placeholder]
    for start, end in sorted(analysis.macro_uses[placeholder], reverse=True):
        jinja = jinja[:start] + replacement + jinja[end:]
    return jinja


@dataclass(frozen=True)
class _Use:
    """A column reference and what it resolves to: ``source``, ``other`` or ``ambiguous``."""

    column: exp.Column
    scope: Scope
    verdict: str


class _Analysis:
    """Which columns of a parsed file resolve to one source table, found through sqlglot's scopes."""

    def __init__(self, sql: _Sql, source: _Source) -> None:
        from sqlglot import exp
        from sqlglot.errors import SqlglotError
        from sqlglot.optimizer.scope import traverse_scope

        self.sql = sql
        self.source = source
        self.placeholders = {
            placeholder
            for placeholder, (source_name, name) in sql.masked.sources.items()
            if (source_name, name.casefold()) == (source.source_name, source.name.casefold())
        }
        try:
            self.scopes = list(traverse_scope(sql.tree))
        except SqlglotError as exc:
            raise _Escalate(
                f"{sql.path}: sqlglot cannot resolve its scopes ({_one_line(exc)[:160]})"
            ) from None
        if not self.scopes:
            raise _Escalate(f"{sql.path} has no query scope to analyse")
        self.root = self.scopes[-1]
        self.macro_uses: dict[str, list[tuple[int, int]]] = {}
        self._exposing: set[int] = set()
        for scope in self.scopes:  # innermost first, so a scope's sources are classified before it
            if self._exposes(scope):
                self._exposing.add(id(scope.expression))
        # Every column of the tree, resolved in its innermost scope. (``Scope.columns`` leaves out some, such as
        # a window's ``partition by`` or an ``order by`` naming an output column.)
        by_expression = {id(scope.expression): scope for scope in self.scopes}
        self.uses: list[_Use] = []
        for column in sql.tree.find_all(exp.Column):
            if isinstance(column.this, exp.Star) or column.name.lower().startswith(_PLACEHOLDER_PREFIX):
                continue
            owner: exp.Expr | None = column.parent
            while owner is not None and id(owner) not in by_expression:
                owner = owner.parent
            if owner is None:
                raise _Escalate(
                    f"{sql.path}: cannot tell which query {column.sql(dialect=DIALECT)} belongs to"
                )
            scope = by_expression[id(owner)]
            self.uses.append(_Use(column, scope, self._verdict(column, scope)))
        self.uses.sort(key=lambda use: _span(use.column)[0])  # the order in which the file reads them

    @property
    def reads_source(self) -> bool:
        return bool(self.placeholders)

    def is_raw(self, source: Any) -> bool:
        """A selected source is the source table itself, or a subquery/CTE passing its columns on with ``*``."""
        from sqlglot import exp

        if isinstance(source, exp.Table):
            return not source.args.get("db") and source.name.lower() in self.placeholders
        from sqlglot.optimizer.scope import Scope

        return isinstance(source, Scope) and id(source.expression) in self._exposing

    def exposes(self, scope: Scope) -> bool:
        return id(scope.expression) in self._exposing

    def _exposes(self, scope: Scope) -> bool:
        from sqlglot import exp

        expression = scope.expression
        if isinstance(expression, exp.SetOperation):
            return any(self.is_raw(branch) for branch in _branches(scope))
        if not isinstance(expression, exp.Select):
            return False
        selected = {name: source for name, (_, source) in scope.selected_sources.items()}
        for projection in expression.expressions:
            if isinstance(projection, exp.Star):
                covered = list(selected.values())
            elif isinstance(projection, exp.Column) and isinstance(projection.this, exp.Star):
                covered = [_lookup(selected, projection.table)]
            else:
                continue
            if any(source is not None and self.is_raw(source) for source in covered):
                return True
        return False

    def _verdict(self, column: exp.Column, scope: Scope) -> str:
        current: Scope | None = scope
        qualifier = column.table
        if qualifier:
            while current is not None:
                found = _lookup(
                    {name: source for name, (_, source) in current.selected_sources.items()}, qualifier
                )
                if found is not None:
                    return "source" if self.is_raw(found) else "other"
                current = current.parent
            return "other"
        while current is not None:
            sources = [source for _, source in current.selected_sources.values()]
            if not sources:
                current = current.parent
                continue
            if not any(self.is_raw(source) for source in sources):
                return "other"
            return "source" if len(sources) == 1 else "ambiguous"
        return "other"

    def source_uses(self, stored: str) -> list[_Use]:
        """The references to a source column; escalates on an ambiguous one or an unsupported position."""
        self._check_positions(stored)
        from sqlglot import exp

        uses = [use for use in self.uses if _stored(use.column.this) == stored and use.verdict != "other"]
        for use in uses:
            if use.verdict == "ambiguous":
                raise _Escalate(
                    f"{self.sql.path} reads {use.column.sql(dialect=DIALECT)} unqualified in a join with "
                    f"{self.source.label}; which table it comes from is unclear, so qualify it with the table "
                    "alias first"
                )
            select = use.scope.expression
            if use.column.table or not isinstance(select, exp.Select):
                continue
            if _projection_containing(use.column, select) is None and any(
                isinstance(item, exp.Alias) and _stored(item.args["alias"]) == stored
                for item in select.expressions
            ):
                # Outside the select list, Snowflake may resolve the name to the output alias instead.
                raise _Escalate(
                    f"{self.sql.path} names {stored} both as a column of {self.source.label} and as an output "
                    "alias, and reads it outside the select list; which one it means is unclear"
                )
        return uses

    def screen(self, stored: str, mentioned: bool, *, macro_arguments: bool = False) -> None:
        """
        Escalate when the file may involve the column in a way the rewriter cannot see.

        With ``macro_arguments``, a Jinja macro call that names the column only as a string argument
        (``{{ cents_to_dollars('amount_cents') }}``) in a query reading the source is accepted and recorded in
        :attr:`macro_uses`, for the rule to edit that argument.
        """
        self.macro_uses = {}
        for placeholder, jinja in self.sql.masked.segments.items():
            if not _mentions(jinja, stored):
                continue
            spans = _macro_column_arguments(jinja, stored) if macro_arguments else None
            if spans and self._reads_source_at(placeholder):
                self.macro_uses[placeholder] = spans
                continue
            if _mentions(jinja, stored):
                raise _Escalate(
                    f"{self.sql.path} names {stored} inside Jinja ({_one_line(jinja)[:80]}); the rewriter does "
                    "not change Jinja"
                )
        if mentioned and not self.reads_source:
            raise _Escalate(
                f"{self.sql.path} names {stored} but does not select from {self.source.jinja}; a person must "
                "change it"
            )
        self.check_expanding_jinja()

    def _reads_source_at(self, placeholder: str) -> bool:
        """Whether a Jinja expression sits, unqualified, in a query whose only input is the source."""
        from sqlglot import exp

        by_expression = {id(scope.expression): scope for scope in self.scopes}
        found = False
        for column in self.sql.tree.find_all(exp.Column):
            if column.name.lower() != placeholder.lower():
                continue
            owner: exp.Expr | None = column.parent
            while owner is not None and id(owner) not in by_expression:
                owner = owner.parent
            if owner is None or column.table or self._verdict(column, by_expression[id(owner)]) != "source":
                return False
            found = True
        return found

    def _check_positions(self, stored: str) -> None:
        """Every identifier with the name must be a column, an output alias or a table name."""
        from sqlglot import exp

        for identifier in self.sql.tree.find_all(exp.Identifier):
            if _stored(identifier) != stored:
                continue
            parent = identifier.parent
            if isinstance(parent, exp.Column):
                continue
            if isinstance(parent, (exp.Alias, exp.Table, exp.TableAlias)) and identifier.arg_key in (
                "alias",
                "this",
            ):
                continue
            context = parent.sql(dialect=DIALECT) if parent is not None else identifier.sql(dialect=DIALECT)
            raise _Escalate(
                f"{self.sql.path} uses {stored} in a position the rewriter does not handle "
                f"({_one_line(context)[:120]}); a person must change it"
            )

    def check_expanding_jinja(self) -> None:
        """A Jinja expression in a select list over the source may expand to its columns (``dbt_utils.star``)."""
        from sqlglot import exp

        for scope in self.scopes:
            expression = scope.expression
            if not isinstance(expression, exp.Select):
                continue
            if not any(self.is_raw(source) for _, source in scope.selected_sources.values()):
                continue
            for projection in expression.expressions:
                for column in projection.find_all(exp.Column):
                    jinja = self.sql.masked.expressions.get(column.name.lower())
                    if jinja is not None and _EXPANDING_MACRO.search(jinja):
                        raise _Escalate(
                            f"{self.sql.path} selects {_one_line(jinja)!r} from the source; it may expand to the "
                            "source's columns, which the rewriter cannot see"
                        )

    def contract(self) -> list[str]:
        """The source's columns this file reads for certain, in order of first appearance, stored form."""
        from sqlglot import exp

        names: list[str] = []
        for use in self.uses:
            if use.verdict != "source":
                continue
            name = _stored(use.column.this)
            select = use.scope.expression
            if isinstance(select, exp.Select):
                # Snowflake lets a clause name another select item's alias; such a name may not be a column.
                owner = _projection_containing(use.column, select)
                aliases = {
                    _stored(projection.args["alias"])
                    for projection in select.expressions
                    if isinstance(projection, exp.Alias) and projection is not owner
                }
                if name in aliases:
                    continue
            if name not in names:
                names.append(name)
        return names


def _lookup(mapping: Mapping[str, Any], name: str) -> Any:
    if name in mapping:
        return mapping[name]
    folded = name.casefold()
    matches = [value for key, value in mapping.items() if key.casefold() == folded]
    return matches[0] if len(matches) == 1 else None


def _projection_containing(node: exp.Expr, select: exp.Select) -> exp.Expr | None:
    current: exp.Expr | None = node
    while current is not None and current.parent is not select:
        current = current.parent
    if current is not None and current.arg_key == "expressions":
        return current
    return None


def _branches(scope: Scope) -> list[Scope]:
    """The branch scopes of a set operation (``set_operation_scopes``; ``union_scopes`` before sqlglot 27)."""
    branches = getattr(scope, "set_operation_scopes", None) or getattr(scope, "union_scopes", None) or []
    return list(branches)


def _is_bare_projection(column: exp.Column) -> bool:
    from sqlglot import exp

    return isinstance(column.parent, exp.Select) and column.arg_key == "expressions"


def _span(node: exp.Expr) -> tuple[int, int]:
    """``[start, end)`` of a column or an aliased column in the masked text, from the tokens' positions."""
    from sqlglot import exp

    starts: list[int] = []
    ends: list[int] = []
    for identifier in node.find_all(exp.Identifier):
        meta = identifier.meta
        if "start" not in meta or "end" not in meta:
            raise _Escalate(f"sqlglot gave no position for {identifier.sql(dialect=DIALECT)}")
        starts.append(int(meta["start"]))
        ends.append(int(meta["end"]) + 1)
    if not starts:
        raise _Escalate(f"sqlglot gave no position for {node.sql(dialect=DIALECT)}")
    return min(starts), max(ends)


def _analyse_reader(
    context: _Context,
    reader: Mapping[str, Any],
    source: _Source,
    stored: str,
    *,
    macro_arguments: bool = False,
) -> _Analysis | None:
    """
    Parse and screen a file that reads the source directly; None when it cannot involve the column.

    A file that does not parse is skipped only if it does not name the column at all.
    """
    path = _path_of(reader)
    text = context.read(path)
    mentioned = _mentions(text, stored)
    try:
        sql = _load_sql(context, reader, text)
    except _Escalate:
        if mentioned:
            raise
        return None
    analysis = _Analysis(sql, source)
    analysis.screen(stored, mentioned, macro_arguments=macro_arguments)
    return analysis


# ---------------------------------------------------------------------------------------------------------------
# Text edits guided by the tree
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class _Edit:
    start: int
    end: int
    text: str


def _apply(masked: _Masked, edits: Sequence[_Edit]) -> str:
    ordered = sorted(edits)
    for before, after in zip(ordered, ordered[1:], strict=False):
        if after.start < before.end:
            raise _Escalate(f"two edits to {masked.path} overlap; a person must change it")
    for edit in ordered:
        for start, end in masked.spans():
            if edit.start < end and start < edit.end:
                raise _Escalate(f"an edit to {masked.path} would touch its Jinja; a person must change it")
    text = masked.text
    for edit in reversed(ordered):
        text = text[: edit.start] + edit.text + text[edit.end :]
    return text


def _finish(sql: _Sql, edited: str, expected: exp.Expr, jinja_edits: Mapping[str, str] | None = None) -> str:
    """
    Check the edited SQL parses to the expected tree, then put the Jinja back.

    :param jinja_edits: placeholder to new Jinja, for the macro arguments a rule rewrote; all other Jinja must
        come back exactly as written.
    """
    if _canonical(_parse(edited, sql.path)) != _canonical(expected):
        raise _Escalate(f"the edit to {sql.path} did not produce the intended SQL; a person must change it")
    restored = sql.masked.unmask(edited, jinja_edits)
    if _JINJA.findall(restored) != _JINJA.findall(sql.masked.unmask(sql.masked.text, jinja_edits)):
        raise _Escalate(f"rewriting {sql.path} would change its Jinja; a person must change it")
    return restored


def _replace_columns(
    sql: _Sql,
    uses: Sequence[_Use],
    rewrite: Callable[[exp.Column, str], str],
    jinja_edits: Mapping[str, str] | None = None,
) -> str:
    """
    Replace each column with ``rewrite(column, written)``; a bare select item keeps its output name.

    ``written`` is the column as written (``o.customer_email``). The expected tree is the original with each
    column replaced by the parse of the same snippet.
    """
    import sqlglot
    from sqlglot import exp

    edits = []
    replacements: list[tuple[exp.Column, str]] = []
    for use in uses:
        start, end = _span(use.column)
        snippet = rewrite(use.column, sql.written(start, end))
        if _is_bare_projection(use.column):
            name_start, name_end = _span(use.column.this)
            snippet = f"{snippet} as {sql.written(name_start, name_end)}"
        edits.append(_Edit(start, end, snippet))
        replacements.append((use.column, snippet))
    edited = _apply(sql.masked, edits)
    for column, snippet in replacements:
        parsed = sqlglot.parse_one(f"select {snippet}", read=DIALECT)
        column.replace(parsed.expressions[0] if isinstance(parsed, exp.Select) else parsed)
    return _finish(sql, edited, sql.tree, jinja_edits)


def _tokens(sql: _Sql) -> list[Any]:
    from sqlglot.dialects.dialect import Dialect

    return list(Dialect.get_or_raise(DIALECT).tokenize(sql.masked.text))


def _line_bounds(text: str, position: int) -> tuple[int, int]:
    """``[start, end)`` of the line holding ``position``, the newline included in ``end``."""
    start = text.rfind("\n", 0, position) + 1
    newline = text.find("\n", position)
    return start, len(text) if newline == -1 else newline + 1


_LINE_TAIL = re.compile(r"[ \t]*(?:--[^\n]*)?\n?")


def _removal_edits(sql: _Sql, projection: exp.Expr) -> list[_Edit]:
    """Edits that delete one select-list item with its comma, and its line when it has one to itself."""
    text = sql.masked.text
    start, end = _span(projection)
    tokens = _tokens(sql)
    first = next((index for index, token in enumerate(tokens) if token.start == start), None)
    last = next((index for index, token in enumerate(tokens) if token.end + 1 == end), None)
    if first is None or last is None:
        raise _Escalate(f"cannot locate {projection.sql(dialect=DIALECT)} in {sql.path}")
    comma_before = tokens[first - 1] if first > 0 and tokens[first - 1].token_type.name == "COMMA" else None
    comma_after = (
        tokens[last + 1] if last + 1 < len(tokens) and tokens[last + 1].token_type.name == "COMMA" else None
    )
    comma = comma_after or comma_before
    if comma is None:
        raise _Escalate(f"{projection.sql(dialect=DIALECT)} is the only select item in {sql.path}")

    line_start, line_end = _line_bounds(text, start)
    own_start = comma_before.start if comma_before and comma_before.start >= line_start else start
    own_end = comma_after.end + 1 if comma_after and comma_after.start < line_end else end
    if text[line_start:own_start].strip() == "" and _LINE_TAIL.fullmatch(text, own_end, line_end):
        # The item owns its line: drop the line, and the comma that separated it if that sits elsewhere.
        edits = [_Edit(line_start, line_end, "")]
        if own_start == start and own_end == end:
            edits.append(_Edit(comma.start, comma.end + 1, ""))
        return edits
    if comma_after is not None:
        spaces = len(text[comma_after.end + 1 :]) - len(text[comma_after.end + 1 :].lstrip(" \t"))
        return [_Edit(start, comma_after.end + 1 + spaces, "")]
    return [_Edit(comma.start, end, "")]


# ---------------------------------------------------------------------------------------------------------------
# YAML edits guided by the composed node tree
# ---------------------------------------------------------------------------------------------------------------

_Step = str | int


@dataclass(frozen=True)
class _YamlHit:
    node: yaml.Node
    path: tuple[_Step, ...]


def _compose(text: str, path: str) -> yaml.Node:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise _Escalate(f"{path} is not valid YAML ({_one_line(exc)[:200]})") from None
    if root is None:
        raise _Escalate(f"{path} is empty")
    return root


def _value(hit: _YamlHit, key: str) -> _YamlHit | None:
    if not isinstance(hit.node, yaml.MappingNode):
        return None
    for key_node, value_node in hit.node.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.value == key:
            return _YamlHit(value_node, (*hit.path, key))
    return None


def _key_node(hit: _YamlHit, key: str) -> yaml.Node | None:
    if isinstance(hit.node, yaml.MappingNode):
        for key_node, _ in hit.node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.value == key:
                return key_node
    return None


def _items(hit: _YamlHit | None) -> list[_YamlHit]:
    if hit is None or not isinstance(hit.node, yaml.SequenceNode):
        return []
    return [_YamlHit(item, (*hit.path, index)) for index, item in enumerate(hit.node.value)]


def _named(hit: _YamlHit | None, name: str, *, fold: bool = False) -> _YamlHit | None:
    """The item of a sequence of mappings whose ``name`` is ``name``."""
    for item in _items(hit):
        value = _value(item, "name")
        if value is None or not isinstance(value.node, yaml.ScalarNode):
            continue
        if value.node.value == name or (fold and str(value.node.value).casefold() == name.casefold()):
            return item
    return None


def _scalar_text(style: str | None, value: str) -> str:
    """A YAML string scalar in the given quoting style; plain only when it loads back as the same string."""
    if style == "'":
        return "'" + value.replace("'", "''") + "'"
    if style == '"' or not re.fullmatch(r"[\w$][\w$. -]*", value) or yaml.safe_load(value) != value:
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return value


def _replace_scalar(text: str, node: yaml.Node, value: str) -> str:
    if not isinstance(node, yaml.ScalarNode) or node.style in ("|", ">"):
        raise _Escalate(f"cannot edit the YAML value at line {node.start_mark.line + 1} in place")
    return text[: node.start_mark.index] + _scalar_text(node.style, value) + text[node.end_mark.index :]


def _last_line(node: yaml.Node) -> int:
    """The last line (0-based) holding any of the node's content."""
    if isinstance(node, yaml.ScalarNode) or getattr(node, "flow_style", False):
        mark = node.end_mark
        return mark.line if mark.column > 0 else mark.line - 1
    children: list[yaml.Node] = []
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            children.extend((key_node, value_node))
    elif isinstance(node, yaml.SequenceNode):
        children.extend(node.value)
    return max([node.start_mark.line, *(_last_line(child) for child in children)])


def _line_offsets(text: str) -> list[int]:
    offsets = [0]
    for line in text.splitlines(keepends=True):
        offsets.append(offsets[-1] + len(line))
    return offsets


def _insert_key_after(text: str, mapping: _YamlHit, after: str, key: str, value: str) -> str:
    key_node = _key_node(mapping, after)
    anchor = _value(mapping, after)
    if key_node is None or anchor is None or getattr(mapping.node, "flow_style", False):
        raise _Escalate(f"cannot add {key} next to {after} at line {mapping.node.start_mark.line + 1}")
    offsets = _line_offsets(text)
    line = _last_line(anchor.node)
    insert_at = offsets[line + 1] if line + 1 < len(offsets) else len(text)
    prefix = "" if text[:insert_at].endswith("\n") else "\n"
    return f"{text[:insert_at]}{prefix}{' ' * key_node.start_mark.column}{key}: {value}\n{text[insert_at:]}"


def _remove_item(text: str, item: _YamlHit) -> str:
    """Delete a block-sequence item's lines (``- name: X`` and everything under it)."""
    start_mark = item.node.start_mark
    offsets = _line_offsets(text)
    line_text = text[offsets[start_mark.line] : start_mark.index]
    if not re.fullmatch(r"[ \t]*-[ \t]+", line_text):
        raise _Escalate(f"cannot remove the YAML item at line {start_mark.line + 1} line by line")
    last = _last_line(item.node)
    end = offsets[last + 1] if last + 1 < len(offsets) else len(text)
    return text[: offsets[start_mark.line]] + text[end:]


def _append_item(text: str, sequence: _YamlHit, value_text: str) -> str:
    node = sequence.node
    if not isinstance(node, yaml.SequenceNode):
        raise _Escalate(f"the YAML at line {node.start_mark.line + 1} is not a list")
    if node.flow_style:
        close = node.end_mark.index - 1
        if text[close] != "]":
            raise _Escalate(f"cannot find the end of the list at line {node.start_mark.line + 1}")
        separator = ", " if node.value else ""
        return text[:close] + separator + value_text + text[close:]
    if not node.value:
        raise _Escalate(f"the list at line {node.start_mark.line + 1} is empty; its layout is unknown")
    last = node.value[-1]
    offsets = _line_offsets(text)
    dash = text[offsets[last.start_mark.line] : last.start_mark.index]
    match = re.fullmatch(r"([ \t]*)-[ \t]+", dash)
    if match is None:
        raise _Escalate(f"cannot add to the list at line {node.start_mark.line + 1} line by line")
    line = _last_line(last)
    insert_at = offsets[line + 1] if line + 1 < len(offsets) else len(text)
    prefix = "" if text[:insert_at].endswith("\n") else "\n"
    return f"{text[:insert_at]}{prefix}{match.group(1)}- {value_text}\n{text[insert_at:]}"


def _remove_checked(text: str, path: str, entry: _YamlHit) -> str:
    """Remove a sequence item and check the result loads to the data without it."""
    updated = _remove_item(text, entry)

    def drop(data: Any) -> None:
        del _get(data, entry.path[:-1])[entry.path[-1]]

    _check_yaml(text, updated, path, drop)
    return updated


def _get(data: Any, path: Sequence[_Step]) -> Any:
    for step in path:
        data = data[step]
    return data


def _check_yaml(old: str, new: str, path: str, change: Callable[[Any], None]) -> None:
    """The edited YAML must load to the original data with the same change made on it."""
    expected = yaml.safe_load(old)
    change(expected)
    try:
        actual = yaml.safe_load(new)
    except yaml.YAMLError:
        actual = None
    if actual != expected:
        raise _Escalate(f"the edit to {path} did not produce the intended YAML; a person must change it")


def _source_table(source: _Source, text: str) -> _YamlHit:
    root = _YamlHit(_compose(text, source.yaml_path), ())
    declared = _named(_value(root, "sources"), source.source_name)
    table = _named(_value(declared, "tables") if declared else None, source.name)
    if table is None:
        raise _Escalate(f"cannot find source {source.label} in {source.yaml_path}")
    return table


# ---------------------------------------------------------------------------------------------------------------
# Guard tests
# ---------------------------------------------------------------------------------------------------------------


def _comment(context: _Context, *sentences: str) -> str:
    text = f"Guard test written by airflow-selfheal for {context.incident_id}. " + " ".join(
        _one_line(sentence) for sentence in sentences
    )
    return "\n".join(textwrap.wrap(text, width=106, initial_indent="-- ", subsequent_indent="-- ")) + "\n"


def _contract_guard(
    context: _Context, source: _Source, changes: Mapping[str, str], why: str
) -> tuple[str, str, list[str]]:
    """A singular test reading every column of the source the direct readers use, returning no rows."""
    columns: list[str] = []
    for reader in context.direct_readers(source):
        if reader.get("resource_type") not in _SQL_READERS:
            continue
        path = _path_of(reader)
        text = changes.get(path, context.files.get(path))
        if text is None:
            continue
        try:
            analysis = _Analysis(_load_sql(context, reader, text), source)
        except _Escalate:
            continue  # a file the rewriter cannot read adds nothing certain to the contract
        columns.extend(name for name in analysis.contract() if name not in columns)
    select_list = ",\n".join(f"    {_sql_name(name)}" for name in columns) if columns else "    *"
    comment = _comment(
        context,
        why,
        f"This test reads the columns of {source.label} that the models use and returns no rows, so `dbt build`",
        "fails here, naming the source, if one of them is renamed or dropped again.",
    )
    body = f"{comment}select\n{select_list}\nfrom {source.jinja}\nwhere false\n"
    return context.guard_path(source.source_name, source.name, "columns"), body, columns


# ---------------------------------------------------------------------------------------------------------------
# Rule 1: column_rename
# ---------------------------------------------------------------------------------------------------------------


def _column_rename(
    context: _Context, triage: Mapping[str, Any], _rows: Sequence[Mapping[str, Any]]
) -> _Draft:
    evidence = dict((triage.get("root_cause") or {}).get("evidence") or {})
    old, new = str(evidence.get("column") or ""), str(evidence.get("new_column") or "")
    if not old or not new:
        raise _Escalate("the rename evidence names no old or no new column")
    source = context.find_source(str(evidence.get("table")))
    confidence = evidence.get("confidence")
    draft = _Draft(
        [
            f"Evidence: {_evidence_message(evidence)}",
            f"Fix: the files reading {source.label} directly now read {new} where they read {old}. A bare "
            f"{old.lower()} in a select list becomes `{new.lower()} as {old.lower()}`, so every output column "
            "keeps its name and nothing downstream changes.",
        ]
    )
    edited: list[str] = []
    for reader in context.direct_readers(source):
        analysis = _analyse_reader(context, reader, source, old, macro_arguments=True)
        if analysis is None:
            continue
        sql = analysis.sql
        if reader.get("resource_type") in _SQL_READERS and analysis.exposes(analysis.root):
            raise _Escalate(
                f"{sql.path} selects * from {source.label}, so its output would change from {old} to {new}; "
                "a person must decide the output name"
            )
        uses = analysis.source_uses(old)
        if not uses and not analysis.macro_uses:
            continue
        context.check_editable(reader)

        def rename(column: exp.Column, written: str) -> str:
            offset = _span(column.this)[0] - _span(column)[0]  # past the qualifier, e.g. "o."
            return written[:offset] + _spell(new, written[offset:])

        # A macro given the column by name (``{{ cents_to_dollars('amount_cents') }}``) is given the new name.
        macro_edits = {}
        for placeholder, spans in analysis.macro_uses.items():
            written = sql.masked.segments[placeholder][spans[0][0] : spans[0][1]]
            macro_edits[placeholder] = _edit_macro_arguments_to(analysis, placeholder, _spell(new, written))
        draft.changes[sql.path] = _replace_columns(sql, uses, rename, macro_edits)
        count = len(uses) + sum(len(spans) for spans in analysis.macro_uses.values())
        edited.append(f"{sql.name} ({sql.path}, {count} reference{'s' if count != 1 else ''})")
    if not edited:
        raise _Escalate(
            f"no model reading {source.label} directly references {old}; the failure is elsewhere"
        )
    draft.rationale.append(f"Changed: {_names(edited)}.")

    yaml_text = context.files.get(source.yaml_path)
    if yaml_text is not None:
        table = _source_table(source, yaml_text)
        entry = _named(_value(table, "columns"), old, fold=True)
        if entry is not None and _named(_value(table, "columns"), new, fold=True) is not None:
            draft.rationale.append(
                f"{source.yaml_path} already declares {new}; its {old} entry is left for a person to merge."
            )
        elif entry is not None:
            name = _value(entry, "name")
            if name is None:
                raise _Escalate(f"cannot read the column entry of {old} in {source.yaml_path}")
            written = str(name.node.value)
            new_name = (
                new if written == written.upper() else new.lower() if written == written.lower() else new
            )
            if not _PLAIN_STORED.fullmatch(new):
                raise _Escalate(f"{new} needs quoting; a person must declare it in {source.yaml_path}")
            updated = _replace_scalar(yaml_text, name.node, new_name)

            def set_name(data: Any) -> None:
                _get(data, entry.path)["name"] = new_name

            _check_yaml(yaml_text, updated, source.yaml_path, set_name)
            draft.changes[source.yaml_path] = updated
            draft.rationale.append(
                f"The column entry of {source.label} in {source.yaml_path} is renamed to {new_name}, so its "
                "description and tests follow the data."
            )

    guard_path, guard, _ = _contract_guard(
        context, source, draft.changes, f"{source.label}.{old} was renamed upstream to {new}."
    )
    draft.add_guard(guard_path, guard)
    if confidence is not None:
        draft.rationale.append(
            f"The rename is inferred (confidence {float(confidence):.2f}); validation will tell."
        )
    draft.rationale.append(
        f"Guard: {guard_path} selects the columns of {source.label} the models read, {new} included, and "
        "returns no rows; a future rename or drop fails there, at the source, with the column's name."
    )
    return draft


# ---------------------------------------------------------------------------------------------------------------
# Rule 2: type_cast
# ---------------------------------------------------------------------------------------------------------------


def _type_text(data_type: str) -> str:
    """A canonical type as new SQL text, e.g. ``NUMBER(10,2)`` to ``number(10, 2)``."""
    from sqlglot import exp
    from sqlglot.errors import SqlglotError

    text = re.sub(r"\s*,\s*", ", ", data_type.strip()).lower()
    try:
        exp.DataType.build(text, dialect=DIALECT)
    except (SqlglotError, ValueError):
        raise _Escalate(f"{data_type!r} is not a type the rewriter can cast to") from None
    return text


def _type_cast(context: _Context, triage: Mapping[str, Any], _rows: Sequence[Mapping[str, Any]]) -> _Draft:
    evidence = dict((triage.get("root_cause") or {}).get("evidence") or {})
    column = str(evidence.get("column") or "")
    old_type, new_type = evidence.get("old_type"), evidence.get("new_type")
    if not column or not old_type or not new_type:
        raise _Escalate("the type-change evidence names no column or no types")
    source = context.find_source(str(evidence.get("table")))
    target = _type_text(normalize_type(str(old_type)))
    from_string = normalize_type(str(new_type)).startswith("VARCHAR")
    function = "try_cast" if from_string else "cast"

    draft = _Draft(
        [
            f"Evidence: {_evidence_message(evidence)}",
            f"Fix: the models reading {source.label} directly cast {column} back to {target} with an explicit "
            f"{function}, keeping the output name, so downstream sees the type it was built for."
            + (
                " try_cast is safe here: the new type is a string, and a value that does not convert becomes null "
                "instead of failing the model (the guard test reports such values)."
                if from_string
                else " cast is used because Snowflake's try_cast accepts only string input."
            ),
        ]
    )
    edited = []
    for reader in context.direct_readers(source):
        if reader.get("resource_type") not in _SQL_READERS:
            continue
        analysis = _analyse_reader(context, reader, source, column, macro_arguments=True)
        if analysis is None:
            continue
        sql = analysis.sql
        if analysis.exposes(analysis.root):
            raise _Escalate(
                f"{sql.path} selects * from {source.label}, so {column} reaches its output uncast; a person "
                "must list the columns first"
            )
        uses = analysis.source_uses(column)
        if not uses and not analysis.macro_uses:
            continue
        context.check_editable(reader)
        macro_edits = {}
        for placeholder, spans in analysis.macro_uses.items():
            written = sql.masked.segments[placeholder][spans[0][0] : spans[0][1]]
            macro_edits[placeholder] = _edit_macro_arguments_to(
                analysis, placeholder, f"{function}({written} as {target})"
            )
        draft.changes[sql.path] = _replace_columns(
            sql, uses, lambda _column, written: f"{function}({written} as {target})", macro_edits
        )
        edited.append(f"{sql.name} ({sql.path})")
        if macro_edits:
            draft.rationale.append(
                f"{sql.name} passes {column} to a macro by name; the macro is given the cast expression instead "
                "(macros that build SQL from the argument, as dbt macros do, then read the cast value). "
                "Validation in the clone shows whether this macro does."
            )
    if not edited:
        raise _Escalate(
            f"no model reading {source.label} directly references {column}; the failure is elsewhere"
        )
    draft.rationale.append(f"Changed: {_names(edited)}.")

    name = _sql_name(column)
    if from_string:
        guard_path = context.guard_path(source.source_name, source.name, column, "castable")
        comment = _comment(
            context,
            f"{source.label}.{column} changed type from {old_type} to {new_type}, and the models cast it back",
            f"with try_cast. This test returns the values that do not convert to {target}, which try_cast would",
            "otherwise turn into silent nulls.",
        )
        guard = (
            f"{comment}select {name}\nfrom {source.jinja}\n"
            f"where {name} is not null\n    and try_cast({name} as {target}) is null\n"
        )
        draft.rationale.append(
            f"Guard: {guard_path} fails when a value of {column} does not convert to {target}, so no data is "
            "lost to nulls without a failing test."
        )
    else:
        guard_path, guard, _ = _contract_guard(
            context,
            source,
            draft.changes,
            f"{source.label}.{column} changed type from {old_type} to {new_type}.",
        )
        draft.rationale.append(
            f"Guard: {guard_path} checks that the columns the models read are still there."
        )
    draft.add_guard(guard_path, guard)
    return draft


# ---------------------------------------------------------------------------------------------------------------
# Rule 3: drop_unused_column
# ---------------------------------------------------------------------------------------------------------------


def _select_item(column: exp.Column) -> exp.Expr | None:
    """The select-list item a column is, alone or aliased; None when it sits inside other logic."""
    from sqlglot import exp

    if _is_bare_projection(column):
        return column
    parent = column.parent
    if isinstance(parent, exp.Alias) and parent.this is column and _is_bare_projection_alias(parent):
        return parent
    return None


def _is_bare_projection_alias(alias: exp.Alias) -> bool:
    from sqlglot import exp

    return isinstance(alias.parent, exp.Select) and alias.arg_key == "expressions"


def _star_fed(analysis: _Analysis) -> set[int]:
    """Scopes whose outputs reach the file's output through ``*``: the root and what it stars, recursively."""
    from sqlglot import exp
    from sqlglot.optimizer.scope import Scope

    fed = {id(analysis.root.expression)}
    pending = [analysis.root]
    while pending:
        scope = pending.pop()
        expression = scope.expression
        branches: list[Any] = list(_branches(scope)) if isinstance(expression, exp.SetOperation) else []
        if isinstance(expression, exp.Select):
            selected = {name: source for name, (_, source) in scope.selected_sources.items()}
            for projection in expression.expressions:
                if isinstance(projection, exp.Star):
                    branches.extend(selected.values())
                elif isinstance(projection, exp.Column) and isinstance(projection.this, exp.Star):
                    branches.append(_lookup(selected, projection.table))
        for branch in branches:
            if isinstance(branch, Scope) and id(branch.expression) not in fed:
                fed.add(id(branch.expression))
                pending.append(branch)
    return fed


def _file_uses(context: _Context, node: Mapping[str, Any], names: set[str]) -> str:
    """``uses``, ``passes`` (a ``*`` may carry the names on) or ``no``, for a downstream SQL file."""
    from sqlglot import exp

    path = _path_of(node)
    text = context.files.get(path)
    if text is None:
        return "uses"
    try:
        sql = _load_sql(context, node, text)
    except _Escalate:
        return "uses"  # unreadable: assume the worst
    if any(_mentions(jinja, name) for jinja in sql.masked.segments.values() for name in names):
        return "uses"
    for identifier in sql.tree.find_all(exp.Identifier):
        if _stored(identifier) not in names:
            continue
        parent = identifier.parent
        if isinstance(parent, exp.Column) and identifier.arg_key == "this":
            return "uses"
        if not isinstance(parent, (exp.Alias, exp.Table, exp.TableAlias, exp.Column)):
            return "uses"
    for star in sql.tree.find_all(exp.Star):
        holder = star.parent if isinstance(star.parent, exp.Column) else star
        if isinstance(holder.parent, exp.Select) and holder.arg_key == "expressions":
            return "passes"
    return "no"


def _downstream_users(context: _Context, unique_id: str, names: set[str]) -> list[str]:
    users: list[str] = []
    seen: set[str] = set()
    pending = [unique_id]
    while pending:
        parent = pending.pop()
        for child_id in context.children(parent):
            if child_id in seen:
                continue
            seen.add(child_id)
            child = context.node(child_id)
            if child is None:
                users.append(f"{child_id} (cannot check which columns it reads)")
                continue
            resource_type = child.get("resource_type")
            label = f"{resource_type} {child.get('name')}"
            metadata = child.get("test_metadata")
            if resource_type == "test" and isinstance(metadata, dict):
                kwargs = metadata.get("kwargs") or {}
                columns = {child.get("column_name"), kwargs.get("column_name"), kwargs.get("field")}
                if any(isinstance(value, str) and value.upper() in names for value in columns):
                    users.append(label)
                continue
            if resource_type not in (*_SQL_READERS, "test"):
                users.append(f"{label} (cannot check which columns it reads)")
                continue
            verdict = _file_uses(context, child, names)
            if verdict == "uses":
                users.append(label)
            elif verdict == "passes":
                pending.append(child_id)
    return users


def _drop_unused_column(
    context: _Context, triage: Mapping[str, Any], _rows: Sequence[Mapping[str, Any]]
) -> _Draft:
    from sqlglot import exp

    evidence = dict((triage.get("root_cause") or {}).get("evidence") or {})
    column = str(evidence.get("column") or "")
    if not column:
        raise _Escalate("the removal evidence names no column")
    source = context.find_source(str(evidence.get("table")))
    draft = _Draft([f"Evidence: {_evidence_message(evidence)}"])
    users: list[str] = []
    edited: list[str] = []
    outputs: dict[str, set[str]] = {}  # model unique id -> output names that disappear
    for reader in context.direct_readers(source):
        if reader.get("resource_type") != "model":
            if _mentions(context.read(_path_of(reader)), column):
                users.append(f"{reader.get('resource_type')} {reader.get('name')}")
            continue
        analysis = _analyse_reader(context, reader, source, column)
        if analysis is None:
            continue
        sql = analysis.sql
        if analysis.exposes(analysis.root):
            # Nothing to remove: the column simply leaves the model's output. Whoever reads it is a user.
            outputs[str(reader.get("unique_id"))] = {column}
            continue
        uses = analysis.source_uses(column)
        if not uses:
            continue
        context.check_editable(reader)
        items = []
        for use in uses:
            item = _select_item(use.column)
            if item is None:
                context_sql = use.column.parent.sql(dialect=DIALECT) if use.column.parent else column
                raise _Escalate(
                    f"{sql.name} uses {column} in its logic ({_one_line(context_sql)[:80]}), not only in its "
                    "select list; removing it would change what the model computes"
                )
            items.append((item, use.scope))
        removed_ids = {id(item) for item, _ in items}
        fed = _star_fed(analysis)
        names: set[str] = set()
        for item, scope in items:
            output = _stored(item.args["alias"] if isinstance(item, exp.Alias) else item.this)
            # The name must not be read anywhere else in the model (a later CTE, a join, a filter).
            for other in sql.tree.find_all(exp.Column):
                if _stored(other.this) == output and not _inside(other, removed_ids):
                    raise _Escalate(
                        f"{sql.name} reads {output} again after selecting it "
                        f"({_one_line(other.parent.sql(dialect=DIALECT) if other.parent else other)[:80]}); "
                        "removing it would change the model"
                    )
            if id(scope.expression) in fed:
                names.add(output)
        if names:
            config: dict[str, Any] = reader["config"] if isinstance(reader.get("config"), dict) else {}
            contract = reader.get("contract") or config.get("contract") or {}
            if isinstance(contract, dict) and contract.get("enforced"):
                raise _Escalate(
                    f"{sql.name} has an enforced contract; removing {_names(sorted(names))} breaks it"
                )
            outputs[str(reader.get("unique_id"))] = names
        edits = [edit for item, _ in items for edit in _removal_edits(sql, item)]
        edited_text = _apply(sql.masked, edits)
        for item, _ in items:
            item.pop()
        draft.changes[sql.path] = _finish(sql, edited_text, sql.tree)
        edited.append(f"{sql.name} ({sql.path})")

    for child_id in context.children(source.unique_id):
        child = context.node(child_id) or {}
        if (
            child.get("resource_type") == "test"
            and str(child.get("column_name") or "").upper() == column.upper()
        ):
            users.append(f"test {child.get('name')}")
    for unique_id, names in outputs.items():
        users.extend(user for user in _downstream_users(context, unique_id, names) if user not in users)
    if users:
        raise _Escalate(
            f"{source.label}.{column} was removed upstream, but it is still used by {_names(users)}; "
            "a person must decide what replaces it"
        )
    if not edited:
        raise _Escalate(
            f"no model reading {source.label} directly references {column}; the failure is elsewhere"
        )
    draft.rationale.append(
        f"Fix: {column} is gone upstream and nothing downstream reads it, so the select-list entries reading it "
        f"are removed from {_names(edited)}. Downstream models, tests and exposures were checked through the "
        "manifest's child map."
    )

    yaml_text = context.files.get(source.yaml_path)
    if yaml_text is not None:
        table = _source_table(source, yaml_text)
        entry = _named(_value(table, "columns"), column, fold=True)
        if entry is not None:
            draft.changes[source.yaml_path] = _remove_checked(yaml_text, source.yaml_path, entry)
            draft.rationale.append(f"Its column entry is removed from {source.yaml_path}.")
    for unique_id, names in outputs.items():
        model = context.node(unique_id) or {}
        properties = _yaml_path_of(model)
        if properties is None or properties not in context.files:
            continue
        text = draft.changes.get(properties, context.files[properties])
        declared = _named(_value(_YamlHit(_compose(text, properties), ()), "models"), str(model.get("name")))
        for name in sorted(names):
            entry = _named(_value(declared, "columns") if declared else None, name, fold=True)
            if entry is None:
                continue
            text = _remove_checked(text, properties, entry)
            declared = _named(
                _value(_YamlHit(_compose(text, properties), ()), "models"), str(model.get("name"))
            )
            draft.rationale.append(
                f"The {model.get('name')}.{name.lower()} entry is removed from {properties}."
            )
        if text != context.files[properties]:
            draft.changes[properties] = text

    guard_path, guard, _ = _contract_guard(
        context, source, draft.changes, f"{source.label}.{column} was removed upstream."
    )
    draft.add_guard(guard_path, guard)
    draft.rationale.append(
        f"Guard: {guard_path} selects the columns of {source.label} the models still read and returns no rows; "
        "the next removal fails there, at the source, with the column's name."
    )
    return draft


def _inside(node: exp.Expr, ancestors: set[int]) -> bool:
    current: exp.Expr | None = node
    while current is not None:
        if id(current) in ancestors:
            return True
        current = current.parent
    return False


# ---------------------------------------------------------------------------------------------------------------
# Rule 4: source_table_rename
# ---------------------------------------------------------------------------------------------------------------


def _source_table_rename(
    context: _Context, triage: Mapping[str, Any], _rows: Sequence[Mapping[str, Any]]
) -> _Draft:
    evidence = dict((triage.get("root_cause") or {}).get("evidence") or {})
    source = context.find_source(str(evidence.get("table")))
    new_key = str(evidence.get("new_table") or "").replace('"', "")
    new_schema, _, new_table = new_key.rpartition(".")
    if new_schema and new_schema.casefold() != source.schema.casefold():
        raise _Escalate(
            f"{source.label} moved from schema {source.schema} to {new_schema}; changing a source's schema "
            "affects all its tables, so a person must decide"
        )
    if not _PLAIN_STORED.fullmatch(new_table):
        raise _Escalate(f"the new table name {new_table!r} needs quoting; a person must declare it")
    text = context.read(source.yaml_path)
    table = _source_table(source, text)
    name_node = _value(table, "name")
    written = str(name_node.node.value) if name_node is not None else source.name
    identifier = new_table.lower() if written == written.lower() else new_table
    existing = _value(table, "identifier")
    if existing is not None:
        updated = _replace_scalar(text, existing.node, identifier)
    else:
        updated = _insert_key_after(text, table, "name", "identifier", identifier)

    def set_identifier(data: Any) -> None:
        _get(data, table.path)["identifier"] = identifier

    _check_yaml(text, updated, source.yaml_path, set_identifier)
    draft = _Draft(
        [
            f"Evidence: {_evidence_message(evidence)}",
            f"Fix: the source {source.label} now points at the table {identifier} (`identifier: {identifier}` in "
            f"{source.yaml_path}); its name stays {source.name}, so every source('{source.source_name}', "
            f"'{source.name}') and everything downstream is unchanged.",
        ],
        changes={source.yaml_path: updated},
    )
    guard_path, guard, _ = _contract_guard(
        context, source, draft.changes, f"{source.label} was renamed upstream to {new_key}."
    )
    draft.add_guard(guard_path, guard)
    draft.rationale.append(
        f"Guard: {guard_path} reads {source.label} with the columns the models use and returns no rows; if the "
        "table or a column moves again, it fails there, at the source."
    )
    return draft


# ---------------------------------------------------------------------------------------------------------------
# Tests: dedup and accepted_values
# ---------------------------------------------------------------------------------------------------------------


def _failed_test(context: _Context, triage: Mapping[str, Any], test_name: str) -> dict[str, Any]:
    """The failed generic test's manifest node, from the incident's nodes or the triage's identifiers."""
    candidates = [
        str(node.get("unique_id")) for node in context.incident_nodes if node.get("resource_type") == "test"
    ]
    identifiers = {str(item) for item in triage.get("identifiers") or ()}
    for unique_id, node in sorted(context.manifest["nodes"].items()):
        if isinstance(node, dict) and node.get("resource_type") == "test" and node.get("name") in identifiers:
            candidates.append(unique_id)
    for unique_id in candidates:
        node = context.node(unique_id)
        metadata = node.get("test_metadata") if node else None
        if node is not None and isinstance(metadata, dict) and metadata.get("name") == test_name:
            if metadata.get("namespace") not in (None, "dbt"):
                raise _Escalate(
                    f"{node.get('name')} is the {metadata.get('namespace')}.{test_name} test, not dbt's"
                )
            return node
    raise _Escalate(f"cannot find the failed {test_name} test in the manifest")


def _staging_model(context: _Context, test: Mapping[str, Any]) -> tuple[dict[str, Any], _Source]:
    attached = str(test.get("attached_node") or "")
    if not attached:
        parents = [str(parent) for parent in (test.get("depends_on") or {}).get("nodes") or ()]
        attached = parents[0] if len(parents) == 1 else ""
    if attached.startswith("source."):
        raise _Escalate(
            f"{test.get('name')} tests the source itself; the problem is in the raw data, which no model change "
            "fixes"
        )
    model = context.node(attached)
    if model is None or model.get("resource_type") != "model":
        raise _Escalate(f"{test.get('name')} is not attached to a model")
    sources = [
        str(parent)
        for parent in (model.get("depends_on") or {}).get("nodes") or ()
        if str(parent).startswith("source.")
    ]
    if len(sources) != 1:
        raise _Escalate(
            f"{model.get('name')} is not a staging model reading exactly one source; the fix belongs in transform "
            "logic, which needs a person"
        )
    source = context.source(sources[0])
    context.check_editable(model)
    return model, source


def _test_column(test: Mapping[str, Any]) -> str:
    metadata = test.get("test_metadata") or {}
    column = test.get("column_name") or (metadata.get("kwargs") or {}).get("column_name")
    if not isinstance(column, str) or not re.fullmatch(r"[A-Za-z_][\w$]*", column):
        raise _Escalate(f"{test.get('name')} tests {column!r}, which is not a plain column")
    return column


def _origin(analysis: _Analysis, output: str) -> exp.Expr | None:
    """
    The expression over the source's own columns that produces an output column, followed through CTEs.

    :return: None when the output is computed from anything but the one source table.
    """
    from sqlglot import exp

    wanted = output.upper()
    scope: Any = analysis.root
    for _ in range(len(analysis.scopes) + 1):
        select = scope.expression
        if not isinstance(select, exp.Select):
            return None
        sources = [source for _, source in scope.selected_sources.values()]
        if len(sources) != 1:
            return None
        only = sources[0]
        match = next((item for item in select.expressions if str(item.alias_or_name).upper() == wanted), None)
        if match is None:
            if not any(isinstance(item, exp.Star) for item in select.expressions):
                return None
            expression: exp.Expr = exp.column(wanted.lower())
        else:
            expression = match.this if isinstance(match, exp.Alias) else match
        if isinstance(only, exp.Table):
            if not analysis.is_raw(only):
                return None
            if any(
                column.name.lower().startswith(_PLACEHOLDER_PREFIX)
                for column in expression.find_all(exp.Column)
            ):
                return None
            return expression
        if not isinstance(expression, exp.Column):
            return None
        wanted = expression.name.upper()
        scope = only
    return None


def _unqualified_sql(expression: exp.Expr) -> str:
    from sqlglot import exp

    copy = expression.copy()
    for column in copy.find_all(exp.Column):
        column.set("table", None)
    return copy.sql(dialect=DIALECT, normalize_functions="lower")


def _dedup(context: _Context, triage: Mapping[str, Any], _rows: Sequence[Mapping[str, Any]]) -> _Draft:
    from sqlglot import exp

    test = _failed_test(context, triage, "unique")
    model, source = _staging_model(context, test)
    key = _test_column(test)
    sql = _load_sql(context, model)
    analysis = _Analysis(sql, source)
    root = sql.tree
    if not isinstance(root, exp.Select):
        raise _Escalate(f"{sql.name} ends in a set operation; a person must place the dedup")
    for clause in ("group", "qualify", "order", "limit", "offset", "having"):
        if root.args.get(clause):
            raise _Escalate(
                f"{sql.name} already has a {clause.replace('group', 'group by')} clause; a person must place the dedup"
            )
    origin = _origin(analysis, key)
    if not isinstance(origin, exp.Column):
        raise _Escalate(
            f"{sql.name}.{key} is not a column of {source.label}; a person must decide the dedup key"
        )
    source_key = _stored(origin.this)

    tokens = _tokens(sql)
    if tokens and tokens[-1].token_type.name == "SEMICOLON":
        raise _Escalate(f"{sql.path} ends with a semicolon, which dbt models must not have")
    depth = 0
    indent = ""
    for token in tokens:
        if token.token_type.name == "L_PAREN":
            depth += 1
        elif token.token_type.name == "R_PAREN":
            depth -= 1
        elif token.token_type.name == "SELECT" and depth == 0:
            line_start, _ = _line_bounds(sql.masked.text, token.start)
            line = sql.masked.text[line_start : token.start]
            indent = line[: len(line) - len(line.lstrip(" \t"))]
            break

    order = key
    ordered_by = "the key itself (no loaded-at column is known), so which duplicate survives is arbitrary"
    loaded_at = source.loaded_at_field
    if loaded_at is not None:
        loaded_stored = loaded_at.strip('"') if loaded_at.startswith('"') else loaded_at.upper()
        visible = _visible_name(analysis, loaded_stored)
        if visible is not None:
            order = f"{visible} desc"
            ordered_by = (
                f"the source's loaded-at column {loaded_at}, newest first, so the latest copy survives"
            )
    condition = f"row_number() over (partition by {key} order by {order}) = 1"
    body = sql.masked.text.rstrip()
    trailing = sql.masked.text[len(body) :] or "\n"
    edited = f"{body}\n{indent}qualify {condition}{trailing}"
    root.qualify(condition, dialect=DIALECT, copy=False)
    new_text = _finish(sql, edited, root)

    name = _sql_name(source_key)
    guard_path = context.guard_path(source.source_name, source.name, source_key, "duplicates")
    comment = _comment(
        context,
        f"{test.get('name')} found duplicate {key} values in {sql.name}, which now keeps one row per key.",
        f"This warn-level test reports the duplicate {source_key} values arriving in {source.label}, so they stay",
        "visible at the source instead of being silently dropped.",
    )
    guard = (
        f"{{{{ config(severity='warn') }}}}\n{comment}select {name}, count(*) as copies\n"
        f"from {source.jinja}\ngroup by {name}\nhaving count(*) > 1\n"
    )
    draft = _Draft(
        [
            f"Evidence: the unique test {test.get('name')} failed on {sql.name}.{key}"
            + (f" ({_one_line(triage.get('summary'))})" if triage.get("summary") else "")
            + ".",
            f"Fix: {sql.name} ({sql.path}) keeps one row per {key} with `qualify {condition}`, ordered by "
            f"{ordered_by}.",
            "Review: deduplicating hides rows; check that the duplicates are true copies, not distinct events "
            "sharing a key.",
            f"Guard: {guard_path} warns with the duplicate keys of {source.label} on every build.",
        ],
        changes={sql.path: new_text},
    )
    draft.add_guard(guard_path, guard)
    return draft


def _visible_name(analysis: _Analysis, source_column: str) -> str | None:
    """How the root select can name a source column: as the model writes it, or as a CTE's output carrying it."""
    from sqlglot import exp
    from sqlglot.optimizer.scope import Scope

    verdicts = {id(use.column): use.verdict for use in analysis.uses}
    scope = analysis.root
    for _ in range(len(analysis.scopes) + 1):
        sources = [source for _, source in scope.selected_sources.values()]
        if len(sources) != 1:
            return None
        only = sources[0]
        if isinstance(only, exp.Table):
            if not analysis.is_raw(only):
                return None
            for use in analysis.uses:
                if use.verdict == "source" and _stored(use.column.this) == source_column:
                    return analysis.sql.written(*_span(use.column.this))
            return _spell(source_column, "lower")
        if not isinstance(only, Scope) or not isinstance(only.expression, exp.Select):
            return None
        if analysis.is_raw(only):  # a `*` passes the source's columns on under their own names
            scope = only
            continue
        for item in only.expression.expressions:
            inner = item.this if isinstance(item, exp.Alias) else item
            if (
                isinstance(inner, exp.Column)
                and verdicts.get(id(inner)) == "source"
                and _stored(inner.this) == source_column
            ):
                return str(item.alias_or_name)
        return None
    return None


def _accepted_values(
    context: _Context, triage: Mapping[str, Any], failing_rows: Sequence[Mapping[str, Any]]
) -> _Draft:
    from sqlglot import exp

    test = _failed_test(context, triage, "accepted_values")
    model, source = _staging_model(context, test)
    column = _test_column(test)
    kwargs = (test.get("test_metadata") or {}).get("kwargs") or {}
    if kwargs.get("quote") is False:
        raise _Escalate(
            f"{test.get('name')} sets quote: false; its values are SQL, which a person must extend"
        )
    accepted = list(kwargs.get("values") or [])
    if not accepted:
        raise _Escalate(f"{test.get('name')} has no values in the manifest")
    strings = all(isinstance(value, str) for value in accepted)
    counts: dict[Any, Any] = {}
    for row in failing_rows:
        folded = {str(key).casefold(): value for key, value in row.items()}
        value = folded.get("value_field")
        if value is None:
            continue
        value = str(value) if strings else value
        if not strings and type(value) is not type(accepted[0]):
            raise _Escalate(f"the failing value {value!r} does not have the type of the accepted values")
        counts[value] = folded.get("n_records")
    new_values = [value for value in counts if value not in accepted]
    if not counts:
        raise _Escalate(
            f"{test.get('name')} failed, but no failing values were given (re-run the test read-only on the "
            "clone and pass its rows as failing_rows)"
        )
    if not new_values:
        raise _Escalate(
            f"the failing values of {test.get('name')} are already accepted; the cause is elsewhere"
        )

    path = _path_of(test)
    text = context.read(path)
    root = _YamlHit(_compose(text, path), ())
    declared = _named(_value(root, "models"), str(model.get("name")))
    entry = _named(_value(declared, "columns") if declared else None, column, fold=True)
    values_hit = None
    for key in ("data_tests", "tests"):
        for item in _items(_value(entry, key) if entry else None):
            spec = _value(item, "accepted_values")
            if spec is None:
                continue
            candidate = _value(_value(spec, "arguments") or spec, "values") or _value(spec, "values")
            if candidate is not None and _get(yaml.safe_load(text), candidate.path) == accepted:
                values_hit = candidate
    if values_hit is None or not isinstance(values_hit.node, yaml.SequenceNode):
        raise _Escalate(f"cannot find the values of {test.get('name')} in {path}")
    first = values_hit.node.value[0] if values_hit.node.value else None
    updated = text
    for value in new_values:
        hit = values_hit
        if strings:
            value_text = _scalar_text(first.style if isinstance(first, yaml.ScalarNode) else '"', str(value))
        else:
            value_text = yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()
        updated = _append_item(updated, hit, value_text)
        values_hit = _YamlHit(_get_node(_compose(updated, path), values_hit.path), values_hit.path)

    def add_values(data: Any) -> None:
        _get(data, values_hit.path).extend(new_values)

    _check_yaml(text, updated, path, add_values)

    sql = _load_sql(context, model)
    analysis = _Analysis(sql, source)
    origin = _origin(analysis, column)
    if origin is None:
        raise _Escalate(
            f"{sql.name}.{column} is not computed from {source.label} alone; a person must decide"
        )
    expression = _unqualified_sql(origin)
    value_list = ", ".join(exp.convert(value).sql(dialect=DIALECT) for value in [*accepted, *new_values])
    guard_path = context.guard_path(source.source_name, source.name, column, "values")
    comment = _comment(
        context,
        f"{test.get('name')} found values of {sql.name}.{column} outside its accepted list.",
        f"This warn-level test reports, at {source.label}, the values that {sql.name}.{column} would not accept,",
        "before any model reads them.",
    )
    guard = (
        f"{{{{ config(severity='warn') }}}}\n{comment}select {expression} as value_field, count(*) as n_records\n"
        f"from {source.jinja}\nwhere {expression} not in ({value_list})\ngroup by {expression}\n"
    )
    guard = sql.masked.restore(guard)
    seen = ", ".join(
        f"{value!r}" + (f" ({counts[value]} rows)" if counts.get(value) is not None else "")
        for value in new_values
    )
    draft = _Draft(
        [
            f"Evidence: the accepted_values test {test.get('name')} failed on {sql.name}.{column} with new value(s) {seen}.",
            f"Fix: {path} accepts {', '.join(repr(value) for value in new_values)} for {sql.name}.{column}.",
            "Review: a new value may be a legitimate new state or bad data; confirm with the owner of "
            f"{source.label} before approving.",
            f"Guard: {guard_path} warns at {source.label} about any value outside the list, before models read it.",
        ],
        changes={path: updated},
    )
    draft.add_guard(guard_path, guard)
    return draft


def _get_node(root: yaml.Node, path: Sequence[_Step]) -> yaml.Node:
    node = root
    for step in path:
        if isinstance(step, int) and isinstance(node, yaml.SequenceNode):
            node = node.value[step]
        elif isinstance(step, str) and isinstance(node, yaml.MappingNode):
            node = next(value for key, value in node.value if key.value == step)
        else:
            raise _Escalate("the YAML changed shape while it was edited")
    return node


_RULES: dict[str, Callable[[_Context, Mapping[str, Any], Sequence[Mapping[str, Any]]], _Draft]] = {
    "column_rename": _column_rename,
    "type_cast": _type_cast,
    "drop_unused_column": _drop_unused_column,
    "source_table_rename": _source_table_rename,
    "dedup": _dedup,
    "accepted_values": _accepted_values,
}
