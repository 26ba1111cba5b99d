"""
Rule 3, ``drop_unused_column`` (an upstream removal): the select-list entries reading the column are removed.

Only if nothing downstream reads what they produced (followed through ``*`` and the manifest's child map);
otherwise it escalates naming the users. The column's YAML entries go too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_selfheal.core.fixes.context import _SQL_READERS, _Context, _path_of, _yaml_path_of
from airflow_selfheal.core.fixes.guard_tests import _contract_guard
from airflow_selfheal.core.fixes.plan import _Draft, _Escalate, _from_outside
from airflow_selfheal.core.fixes.sql_edit import _apply, _finish, _removal_edits
from airflow_selfheal.core.fixes.sql_names import _mentions, _stored
from airflow_selfheal.core.fixes.sql_parse import DIALECT, _load_sql
from airflow_selfheal.core.fixes.sql_scope import (
    _analyse_reader,
    _Analysis,
    _branches,
    _is_bare_projection,
    _lookup,
)
from airflow_selfheal.core.fixes.wording import _evidence_message, _names, _one_line
from airflow_selfheal.core.fixes.yaml_edit import (
    _compose,
    _named,
    _remove_checked,
    _source_table,
    _value,
    _YamlHit,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from sqlglot import exp


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
    column = _from_outside(evidence.get("column") or "", "the removed column's name")
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
