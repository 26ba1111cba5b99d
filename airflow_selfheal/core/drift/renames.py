"""
Rename inference: pair removed and added columns, or tables, that are most likely the same object renamed.

Renames cannot be observed in ``information_schema``; each pair is scored from its signals (same type or type
family, same position, name similarity, column overlap) as :mod:`airflow_selfheal.core.drift` describes, and
pairs are taken greedily, best score first, each at most once.
"""

from __future__ import annotations

import re
from collections import Counter
from difflib import SequenceMatcher
from typing import TYPE_CHECKING

from airflow_selfheal.core.drift.data_types import normalize_type, type_family

if TYPE_CHECKING:
    from airflow_selfheal.core.drift.snapshot import ColumnSchema, TableSchema

RENAME_THRESHOLD = 0.5
COLUMN_TYPE_WEIGHT = 0.4
COLUMN_POSITION_WEIGHT = 0.3
COLUMN_NAME_WEIGHT = 0.3
TABLE_RENAME_MIN_OVERLAP = 0.8
# A column renamed with the same type family but a different length or precision is a little less certain.
COLUMN_TYPE_FAMILY_WEIGHT = 0.35
TABLE_RENAME_NOISE_PENALTY = 0.05

_NAME_TOKEN = re.compile(r"[^A-Z0-9]+")


def _name_similarity(old_name: str, new_name: str) -> float:
    """The larger of the difflib ratio and the Dice overlap of name tokens, in ``[0, 1]``."""
    old_upper, new_upper = old_name.upper(), new_name.upper()
    ratio = SequenceMatcher(None, old_upper, new_upper).ratio()
    old_tokens = {token for token in _NAME_TOKEN.split(old_upper) if token}
    new_tokens = {token for token in _NAME_TOKEN.split(new_upper) if token}
    dice = 0.0
    if old_tokens and new_tokens:
        dice = 2 * len(old_tokens & new_tokens) / (len(old_tokens) + len(new_tokens))
    return max(ratio, dice)


def _score_column_rename(removed: ColumnSchema, added: ColumnSchema) -> tuple[float, str] | None:
    """Score a (removed, added) pair as a rename; None unless the types are of the same family."""
    removed_type, added_type = normalize_type(removed.data_type), normalize_type(added.data_type)
    if removed_type == added_type:
        score = COLUMN_TYPE_WEIGHT
        signals = [f"same type {removed_type}"]
    elif type_family(removed_type) == type_family(added_type):
        score = COLUMN_TYPE_FAMILY_WEIGHT
        signals = [f"same type family {type_family(removed_type)} ({removed_type} -> {added_type})"]
    else:
        return None
    if removed.position == added.position:
        score += COLUMN_POSITION_WEIGHT
        signals.append(f"same position {removed.position}")
    similarity = _name_similarity(removed.name, added.name)
    if similarity > 0:
        score += COLUMN_NAME_WEIGHT * similarity
        signals.append(f"name similarity {similarity:.2f}")
    return min(1.0, round(score, 2)), "; ".join(signals)


def _greedy_pairs(
    candidates: list[tuple[float, str, str, str]],
) -> list[tuple[float, str, str, str]]:
    """Take ``(score, old, new, reason)`` candidates best first, each old and new at most once."""
    chosen = []
    used_old: set[str] = set()
    used_new: set[str] = set()
    for candidate in sorted(candidates, key=lambda item: (-item[0], item[1], item[2])):
        score, old, new, _ = candidate
        if score < RENAME_THRESHOLD or old in used_old or new in used_new:
            continue
        chosen.append(candidate)
        used_old.add(old)
        used_new.add(new)
    return chosen


def _column_families(table: TableSchema) -> dict[str, str]:
    """Column name to type family: a copy that loses declared lengths keeps it."""
    return {column.name: type_family(column.data_type) for column in table.columns}


def _length_noise(old_table: TableSchema, new_table: TableSchema) -> list[str]:
    """Shared columns of one family whose exact types differ, e.g. ``NAME VARCHAR(16) -> VARCHAR``."""
    new_types = {column.name: normalize_type(column.data_type) for column in new_table.columns}
    noise = []
    for column in sorted(old_table.columns, key=lambda col: col.position):
        old_type, new_type = normalize_type(column.data_type), new_types.get(column.name)
        if new_type is not None and new_type != old_type and type_family(new_type) == type_family(old_type):
            noise.append(f"{column.name} {old_type} -> {new_type}")
    return noise


def _table_rename_candidates(
    removed: list[TableSchema], added: list[TableSchema]
) -> list[tuple[float, str, str, str]]:
    """
    Score removed/added table pairs whose columns overlap enough; an inverted index on names keeps this sparse.

    The overlap is the Jaccard index of the column names, where a shared name of the same type family counts
    1 and one whose family changed (a real type change in the same move) counts half.
    """
    added_families = {table.key: _column_families(table) for table in added}
    added_tables = {table.key: table for table in added}
    tables_by_column: dict[str, list[str]] = {}
    for key, families in added_families.items():
        for name in families:
            tables_by_column.setdefault(name, []).append(key)
    candidates = []
    for old_table in removed:
        old_families = _column_families(old_table)
        shared = Counter(key for name in old_families for key in tables_by_column.get(name, ()))
        for new_key in shared:
            new_families = added_families[new_key]
            union = len(old_families.keys() | new_families.keys())
            same = [name for name in old_families if new_families.get(name) == old_families[name]]
            by_name = [
                name
                for name in old_families
                if name in new_families and new_families[name] != old_families[name]
            ]
            overlap = (len(same) + 0.5 * len(by_name)) / union
            if overlap < TABLE_RENAME_MIN_OVERLAP:
                continue
            old_name = old_table.key.split(".", 1)[1]
            new_name = new_key.split(".", 1)[1]
            similarity = _name_similarity(old_name, new_name)
            noise = _length_noise(old_table, added_tables[new_key])
            score = 0.9 * overlap + 0.1 * similarity - (TABLE_RENAME_NOISE_PENALTY if noise else 0.0)
            confidence = max(0.0, min(1.0, round(score, 2)))
            matched_by = "name and type family" if noise else "name and type"
            reason = f"same columns {len(same)}/{union} by {matched_by}"
            if by_name:
                reason += f", {len(by_name)} more by name only ({', '.join(sorted(by_name)[:3])})"
            reason += f"; name similarity {similarity:.2f}"
            if noise:
                reason += f"; length or precision differs for {len(noise)} ({', '.join(noise[:3])})"
            candidates.append((confidence, old_table.key, new_key, reason))
    return candidates
