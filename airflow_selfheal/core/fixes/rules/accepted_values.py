"""Rule 6, ``accepted_values`` (a new enum value): the values the failed test returned are added to its list."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import yaml

from airflow_selfheal.core.fixes.context import _Context, _path_of
from airflow_selfheal.core.fixes.guard_tests import _comment
from airflow_selfheal.core.fixes.plan import _Draft, _Escalate, _from_outside
from airflow_selfheal.core.fixes.rules.failed_test import _failed_test, _origin, _staging_model, _test_column
from airflow_selfheal.core.fixes.sql_parse import DIALECT, _load_sql
from airflow_selfheal.core.fixes.sql_scope import _Analysis
from airflow_selfheal.core.fixes.yaml_edit import (
    _append_item,
    _check_yaml,
    _compose,
    _get,
    _get_node,
    _items,
    _named,
    _scalar_text,
    _value,
    _YamlHit,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from sqlglot import exp


def _unqualified_sql(expression: exp.Expr) -> str:
    from sqlglot import exp

    copy = expression.copy()
    for column in copy.find_all(exp.Column):
        column.set("table", None)
    return copy.sql(dialect=DIALECT, normalize_functions="lower")


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
        _from_outside(value, f"the failing value of {test.get('name')}")
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
