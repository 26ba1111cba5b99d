"""
YAML edits guided by the composed node tree.

Positions come from the nodes, each edit is a minimal text change that keeps comments and layout, and
``yaml.safe_load`` of the result must equal the loaded original with the same change made on the data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import yaml

from airflow_selfheal.core.fixes.plan import _Escalate
from airflow_selfheal.core.fixes.wording import _one_line

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from airflow_selfheal.core.fixes.context import _Source

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
