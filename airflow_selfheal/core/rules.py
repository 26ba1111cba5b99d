"""
The rules file: which deterministic fixes may be proposed, which models are protected, which paths may change.

The rules are a small knowledge base that lives, version-controlled, in the dbt project at :data:`RULES_FILE`
(like Paradime's ``.dinorules``), so the team that owns the models also owns what the repair loop may do to
them:

.. code-block:: yaml

    # .selfheal/rules.yml in the dbt project
    version: 1
    auto_propose: [column_rename, type_cast, drop_unused_column, source_table_rename, dedup, accepted_values]
    review_tier: [dedup, accepted_values]      # proposed, but marked "review" in the page
    protected_models: [fct_orders]             # never edited; the loop escalates instead
    allowed_paths: ["models/staging/**", "models/**/*.yml", "tests/selfheal_guard_*.sql"]

Every key is optional; an absent key takes its default (see :class:`RulesConfig`). Validation is strict: an
unknown key, an unknown fix type or a value of the wrong shape raises :class:`RulesError` naming the key and
its line, because a typo in a safety setting must not silently widen what the loop may change.

``allowed_paths`` are globs over project-relative POSIX paths: ``*`` and ``?`` stay inside one directory,
``**`` as a whole path segment spans any number of directories (``models/**/*.yml`` matches
``models/_sources.yml`` and ``models/staging/_sources.yml``), and ``[abc]`` is a character class.
"""

from __future__ import annotations

import difflib
import functools
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

RULES_FILE = ".selfheal/rules.yml"
RULES_VERSION = 1
# In priority order: closest to the data contract first (schema corrections, then input tightening, then
# tests and expectations). The order is the ``priority`` of a fix plan.
FIX_TYPES = (
    "column_rename",
    "type_cast",
    "drop_unused_column",
    "source_table_rename",
    "dedup",
    "accepted_values",
)
DEFAULT_REVIEW_TIER = ("dedup", "accepted_values")
# Guard tests are singular tests named ``selfheal_guard_*``; the default lets the loop add them and edit models.
DEFAULT_ALLOWED_PATHS = ("models/**", "tests/selfheal_guard_*.sql")
RULES_KEYS = ("version", "auto_propose", "review_tier", "protected_models", "allowed_paths")
TIERS = ("auto", "review")


class RulesError(ValueError):
    """The rules file is malformed; the message names the file, the key and, when known, the line."""


def _normalize_path(path: str) -> str | None:
    """A project-relative POSIX path without ``.`` parts; None for absolute paths or paths leaving the project."""
    text = path.replace("\\", "/").strip()
    if not text or text.startswith("/") or re.match(r"^[A-Za-z]:", text):
        return None
    parts = [part for part in text.split("/") if part not in ("", ".")]
    if not parts or ".." in parts:
        return None
    return "/".join(parts)


def _segment_regex(segment: str) -> str:
    """Translate one path segment of a glob; ``*`` and ``?`` never cross a ``/``."""
    out: list[str] = []
    index = 0
    while index < len(segment):
        char = segment[index]
        if char == "*":
            while index + 1 < len(segment) and segment[index + 1] == "*":
                index += 1
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            close = segment.find("]", index + 2)
            if close == -1:
                out.append(re.escape(char))
            else:
                body = segment[index + 1 : close]
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append("[" + body.replace("\\", "\\\\").replace("/", "") + "]")
                index = close
        else:
            out.append(re.escape(char))
        index += 1
    return "".join(out)


@functools.lru_cache(maxsize=256)
def glob_regex(pattern: str) -> re.Pattern[str]:
    """
    Compile an ``allowed_paths`` glob to a regular expression matched against a whole path.

    :param pattern: e.g. ``models/**/*.yml``.
    :return: the compiled expression; use ``fullmatch``.
    """
    segments = pattern.replace("\\", "/").strip("/").split("/")
    regex = ""
    for position, segment in enumerate(segments):
        last = position == len(segments) - 1
        if segment == "**":
            regex += ".*" if last else "(?:[^/]+/)*"
        else:
            regex += _segment_regex(segment) + ("" if last else "/")
    return re.compile(regex)


@dataclass(frozen=True)
class RulesConfig:
    """
    The parsed rules file; the defaults apply when there is no file or a key is absent.

    .. code-block:: python

        rules = load_rules(project_files.get(RULES_FILE, ""))
        if rules.allows("column_rename") and rules.is_path_allowed("models/staging/stg_orders.sql"):
            tier = rules.tier("column_rename")  # "auto"

    :param auto_propose: the fix types the loop may propose; by default all of :data:`FIX_TYPES`.
    :param review_tier: fix types proposed but marked ``review`` in the page; by default
        :data:`DEFAULT_REVIEW_TIER`.
    :param protected_models: model names the loop never edits (compared case-insensitively); it escalates.
    :param allowed_paths: globs of the project-relative paths a patch may touch; by default
        :data:`DEFAULT_ALLOWED_PATHS`.
    :param version: the rules file format, :data:`RULES_VERSION`.
    :raises RulesError: if a fix type is unknown or a path glob is absolute or leaves the project.
    """

    auto_propose: tuple[str, ...] = FIX_TYPES
    review_tier: tuple[str, ...] = DEFAULT_REVIEW_TIER
    protected_models: tuple[str, ...] = ()
    allowed_paths: tuple[str, ...] = DEFAULT_ALLOWED_PATHS
    version: int = RULES_VERSION

    def __post_init__(self) -> None:
        for name in ("auto_propose", "review_tier", "protected_models", "allowed_paths"):
            object.__setattr__(self, name, tuple(dict.fromkeys(getattr(self, name))))
        if self.version != RULES_VERSION:
            raise RulesError(f"unsupported rules version {self.version!r}; this release reads version 1")
        for name in ("auto_propose", "review_tier"):
            for fix_type in getattr(self, name):
                if fix_type not in FIX_TYPES:
                    raise RulesError(
                        f"unknown fix type {fix_type!r} in {name}; {_known(fix_type, FIX_TYPES)}"
                    )
        for pattern in self.allowed_paths:
            if _normalize_path(pattern) is None:
                raise RulesError(
                    f"allowed_paths entry {pattern!r} must be a relative path inside the dbt project"
                )

    def allows(self, fix_type: str) -> bool:
        """
        Whether the loop may propose this fix type.

        :param fix_type: one of :data:`FIX_TYPES`.
        :return: True if it is listed in ``auto_propose``.
        """
        return fix_type in self.auto_propose

    def tier(self, fix_type: str) -> str:
        """
        The tier shown in the page for a fix type.

        :param fix_type: one of :data:`FIX_TYPES`.
        :return: ``review`` if it is listed in ``review_tier``, else ``auto``.
        """
        return "review" if fix_type in self.review_tier else "auto"

    def is_protected(self, model_name: str) -> bool:
        """
        Whether a model must never be edited.

        :param model_name: the dbt model's name, e.g. ``fct_orders``.
        :return: True if ``protected_models`` names it, ignoring case.
        """
        wanted = model_name.casefold()
        return any(name.casefold() == wanted for name in self.protected_models)

    def is_path_allowed(self, path: str) -> bool:
        """
        Whether a patch may touch a file.

        :param path: project-relative, e.g. ``models/staging/stg_orders.sql``; backslashes are read as ``/``.
        :return: True if a glob in ``allowed_paths`` matches it; always False for an absolute path or one
            with a ``..`` part.
        """
        normalized = _normalize_path(path)
        if normalized is None:
            return False
        return any(glob_regex(pattern).fullmatch(normalized) for pattern in self.allowed_paths)

    def to_dict(self) -> dict[str, Any]:
        """
        Serialise to a JSON-compatible dict in the rules file's shape.

        :return: every key of :data:`RULES_KEYS`.
        """
        return {
            "version": self.version,
            "auto_propose": list(self.auto_propose),
            "review_tier": list(self.review_tier),
            "protected_models": list(self.protected_models),
            "allowed_paths": list(self.allowed_paths),
        }


def _known(value: str, choices: Iterable[str]) -> str:
    options = list(choices)
    close = difflib.get_close_matches(value, options, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"{hint}known: {', '.join(options)}"


def _where(path: str, node: yaml.Node | None) -> str:
    if node is None:
        return f"({path})"
    return f"({path}, line {node.start_mark.line + 1})"


def _key_nodes(root: yaml.Node | None, path: str) -> dict[str, tuple[yaml.Node, yaml.Node]]:
    """The top-level keys with their key and value nodes; duplicate keys are an error."""
    if not isinstance(root, yaml.MappingNode):
        return {}
    found: dict[str, tuple[yaml.Node, yaml.Node]] = {}
    for key_node, value_node in root.value:
        key = str(key_node.value)
        if key in found:
            raise RulesError(f"key {key!r} appears twice {_where(path, key_node)}")
        found[key] = (key_node, value_node)
    return found


def _string_list(
    key: str, value: Any, nodes: Mapping[str, tuple[yaml.Node, yaml.Node]], path: str
) -> tuple[str, ...]:
    value_node = nodes[key][1] if key in nodes else None
    if value is None:
        return ()
    if not isinstance(value, list):
        raise RulesError(
            f"{key} must be a list of strings, got {type(value).__name__} {_where(path, value_node)}"
        )
    items = value_node.value if isinstance(value_node, yaml.SequenceNode) else []
    for position, item in enumerate(value):
        if not isinstance(item, str) or not item.strip():
            item_node = items[position] if position < len(items) else value_node
            raise RulesError(
                f"{key} entries must be non-empty strings, got {item!r} {_where(path, item_node)}"
            )
    return tuple(item.strip() for item in value)


def load_rules(text: str | None, *, path: str = RULES_FILE) -> RulesConfig:
    r"""
    Parse and validate a rules file.

    .. code-block:: python

        rules = load_rules("version: 1\nprotected_models: [fct_orders]\n")
        assert rules.is_protected("FCT_ORDERS")

    :param text: the file's text; None or an empty document gives the defaults.
    :param path: the file's path, for error messages.
    :return: the rules.
    :raises RulesError: on invalid YAML, a top level that is not a mapping, a duplicate or unknown key, an
        unknown fix type, an unsupported version or a value of the wrong shape; the message names the key and
        its line.
    """
    if text is None or not text.strip():
        return RulesConfig()
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}, line {mark.line + 1}" if mark is not None else path
        problem = getattr(exc, "problem", None) or str(exc)
        raise RulesError(f"the rules file is not valid YAML ({where}): {problem}") from None
    if data is None:
        return RulesConfig()
    if not isinstance(data, dict):
        raise RulesError(f"the rules file must be a mapping of keys, got {type(data).__name__} ({path})")
    nodes = _key_nodes(root, path)
    for key in data:
        if key not in RULES_KEYS:
            raise RulesError(
                f"unknown key {key!r} {_where(path, nodes.get(str(key), (None, None))[0])}; "
                f"{_known(str(key), RULES_KEYS)}"
            )

    version = data.get("version", RULES_VERSION)
    if isinstance(version, bool) or version != RULES_VERSION:
        raise RulesError(
            f"unsupported version {version!r} {_where(path, nodes.get('version', (None, None))[1])}; "
            f"this release reads version {RULES_VERSION}"
        )
    values: dict[str, tuple[str, ...]] = {}
    for key in ("auto_propose", "review_tier", "protected_models", "allowed_paths"):
        if key in data:
            values[key] = _string_list(key, data[key], nodes, path)
    for key in ("auto_propose", "review_tier"):
        for position, fix_type in enumerate(values.get(key, ())):
            if fix_type not in FIX_TYPES:
                value_node = nodes[key][1]
                item = value_node.value[position] if isinstance(value_node, yaml.SequenceNode) else value_node
                raise RulesError(
                    f"unknown fix type {fix_type!r} in {key} {_where(path, item)}; {_known(fix_type, FIX_TYPES)}"
                )
    for position, pattern in enumerate(values.get("allowed_paths", ())):
        if _normalize_path(pattern) is None:
            value_node = nodes["allowed_paths"][1]
            item = value_node.value[position] if isinstance(value_node, yaml.SequenceNode) else value_node
            raise RulesError(
                f"allowed_paths entry {pattern!r} must be a relative path inside the dbt project "
                f"{_where(path, item)}"
            )
    return RulesConfig(version=RULES_VERSION, **values)
