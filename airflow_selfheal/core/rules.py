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
    allowed_sql_functions: [my_udf]            # read by the read-only SQL guard of the probes

Every key is optional; an absent key takes its default (see :class:`RulesConfig`). Validation is strict: an
unknown key, an unknown fix type or a value of the wrong shape raises :class:`RulesError` naming the key and
its line, because a typo in a safety setting must not silently widen what the loop may change.

``allowed_paths`` are globs over project-relative POSIX paths with gitignore's meaning: ``*``, ``?`` and a
character class (``[abc]``, ``[a-z]``, ``[!abc]`` or ``[^abc]``) never match a ``/``, and ``**`` as a whole
path segment spans any number of directories (``models/**/*.yml`` matches ``models/_sources.yml`` and
``models/staging/_sources.yml``; ``models/**`` matches everything inside ``models/``). Matching is
case-sensitive. An absent key gives :data:`DEFAULT_ALLOWED_PATHS`; an empty list allows nothing.

Whatever the globs say, a hard floor (:func:`floor_refusal`) refuses a path inside a ``.git`` folder at any
depth, and, unless ``allowed_paths`` names that exact path (a literal path, not a glob): a path outside
:data:`WRITABLE_ROOTS` (``dbt_project.yml``, ``profiles.yml``, ``packages.yml``, ``macros/``, ``target/``,
``.selfheal/`` and the rest of the top level), a file named like one of :data:`PROTECTED_FILES` at any depth
and anything inside a ``.selfheal`` folder. Names are compared the way case-insensitive file systems see them
(``Profiles.yml``, ``.GIT``, ``.git.``), so a spelling variant is refused too.

``allowed_sql_functions`` names functions (plain identifiers, e.g. ``my_udf``) that the read-only SQL guard
lets a probe call besides its own list; the rules file only declares them.
"""

from __future__ import annotations

import difflib
import functools
import re
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import yaml

from airflow_selfheal.core.guards import UnsafePathError, check_relative_path

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
RULES_KEYS = (
    "version",
    "auto_propose",
    "review_tier",
    "protected_models",
    "allowed_paths",
    "allowed_sql_functions",
)
TIERS = ("auto", "review")
#: The only top-level folders a plan may write, whatever ``allowed_paths`` says: dbt's models, tests,
#: snapshots and seeds. Anything else (settings, macros, packages, dbt's output) needs an exact path.
WRITABLE_ROOTS = ("models", "tests", "snapshots", "seeds")
#: File names refused at any depth unless named exactly: dbt's project, profile and package settings.
PROTECTED_FILES = ("profiles.yml", "dbt_project.yml", "packages.yml", "dependencies.yml")
#: Folder names refused at any depth unless the path is named exactly: this loop's own settings.
PROTECTED_FOLDERS = (".selfheal",)
#: Folder names refused at any depth, even when named exactly: git's hooks and config run code, and git
#: refuses to commit such a path, so no plan has a reason to write one. ``git~1`` is Windows' short name of it.
FORBIDDEN_FOLDERS = (".git", "git~1")
_GLOB_CHARS = frozenset("*?[]")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")


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


def _class_regex(segment: str, start: int) -> tuple[str, int] | None:
    """
    Translate the character class opening at ``segment[start]`` (``[``); it never matches a ``/``.

    :return: the regex and the index after the closing ``]``, or None when no ``]`` closes it (a literal ``[``).
    """
    index = start + 1
    negated = index < len(segment) and segment[index] in "!^"
    if negated:
        index += 1
    if index < len(segment) and segment[index] == "]":
        index += 1  # a ``]`` first in the class is a member
    close = segment.find("]", index)
    if close == -1:
        return None
    body = segment[start + 1 + negated : close]
    members = "".join(char if char == "-" else re.escape(char) for char in body)
    # A range may span "/" ("[.-0]"), and a negated class holds it unless told otherwise.
    return ("[^/" + members + "]" if negated else "(?!/)[" + members + "]"), close + 1


def _segment_regex(segment: str) -> str:
    """Translate one path segment of a glob; ``*``, ``?`` and classes never cross a ``/``."""
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
            translated = _class_regex(segment, index)
            if translated is not None:
                out.append(translated[0])
                index = translated[1]
                continue
            out.append(re.escape(char))
        else:
            out.append(re.escape(char))
        index += 1
    return "".join(out)


@functools.lru_cache(maxsize=256)
def glob_regex(pattern: str) -> re.Pattern[str]:
    """
    Compile an ``allowed_paths`` glob to a regular expression matched against a whole path.

    :param pattern: e.g. ``models/**/*.yml``; backslashes are read as ``/`` and ``.`` or empty parts dropped.
    :return: the compiled expression; use ``fullmatch`` on a normalized path.
    :raises re.error: for a class that is not a valid set, e.g. the reversed range ``[z-a]``.
    """
    segments = (_normalize_path(pattern) or pattern.replace("\\", "/").strip("/")).split("/")
    regex = ""
    for position, segment in enumerate(segments):
        last = position == len(segments) - 1
        if segment == "**":
            regex += "[^/].*" if last else "(?:[^/]+/)*"
        else:
            regex += _segment_regex(segment) + ("" if last else "/")
    return re.compile(regex)


def _is_literal(pattern: str) -> bool:
    return not _GLOB_CHARS & set(pattern)


def _folded(name: str) -> str:
    """
    A path segment as a case-insensitive file system may see it, to compare with a protected name.

    Compatibility forms (fullwidth letters) and case are folded; format and control characters (the
    zero-width ones macOS ignores in names) and stray combining marks are dropped; trailing dots and spaces
    and an NTFS stream suffix (``.git::$INDEX_ALLOCATION``) are cut, as Windows does. It errs on the side of
    a match.
    """
    text = unicodedata.normalize("NFKC", name).casefold()
    text = "".join(char for char in text if unicodedata.category(char) not in ("Cf", "Cc", "Mn"))
    return text.split(":", 1)[0].rstrip(". ")


def floor_refusal(path: str, allowed_paths: Iterable[str]) -> str | None:
    """
    Why the hard floor refuses to let a plan write ``path`` whatever the globs say, or None if it does not.

    The floor comes before the globs of ``allowed_paths``: a ``.git`` folder at any depth is never writable;
    a path outside :data:`WRITABLE_ROOTS`, a file named like one of :data:`PROTECTED_FILES` at any depth and
    anything inside a ``.selfheal`` folder are writable only when ``allowed_paths`` names that exact path (with
    no glob character). Names are compared as :func:`_folded` reads them.

    :param path: a project-relative POSIX path as written, e.g. ``models/staging/stg_orders.sql``; it must
        already be plain (no ``.``, ``..`` or empty part, no backslash; see
        :func:`~airflow_selfheal.core.guards.check_relative_path`).
    :param allowed_paths: the rules file's ``allowed_paths``.
    :return: a message naming the path and the rule that refused it, or None.
    """
    try:
        check_relative_path(path)
    except UnsafePathError as exc:
        return str(exc)
    parts = path.split("/")
    folded = [_folded(part) for part in parts]
    if any(part in FORBIDDEN_FOLDERS for part in folded):
        return f"the writable floor refuses {path!r}: it is inside a .git folder, which no plan may write"
    if any(_is_literal(pattern) and _normalize_path(pattern) == path for pattern in allowed_paths):
        return None
    exact = f"only an exact path in allowed_paths in {RULES_FILE} allows it"
    if folded[-1] in PROTECTED_FILES:
        return f"the writable floor refuses {path!r}: a file named {folded[-1]} holds dbt's settings; {exact}"
    if any(part in PROTECTED_FOLDERS for part in folded[:-1]):
        return f"the writable floor refuses {path!r}: it is inside a .selfheal folder; {exact}"
    if len(parts) < 2 or parts[0] not in WRITABLE_ROOTS:
        roots = ", ".join(f"{root}/" for root in WRITABLE_ROOTS[:-1]) + f" and {WRITABLE_ROOTS[-1]}/"
        return f"the writable floor refuses {path!r}: it is outside {roots}; {exact}"
    return None


def path_refusal(path: str, allowed_paths: Iterable[str]) -> str | None:
    """
    Why a plan may not write ``path``: the hard floor (:func:`floor_refusal`), then the globs.

    .. code-block:: python

        path_refusal("models/.git/config", ["**"])  # "the writable floor refuses 'models/.git/config': ..."
        path_refusal("models/stg_orders.sql", ["models/**"])  # None

    :param path: a plain project-relative POSIX path, as for :func:`floor_refusal`.
    :param allowed_paths: the rules file's ``allowed_paths``; empty allows nothing.
    :return: a message naming the path and the rule that refused it, or None if the plan may write it.
    """
    patterns = list(allowed_paths)
    refused = floor_refusal(path, patterns)
    if refused is not None:
        return refused
    if any(glob_regex(pattern).fullmatch(path) for pattern in patterns):
        return None
    if not patterns:
        return (
            f"path {path!r} is outside the allowed paths: allowed_paths in {RULES_FILE} is empty, which allows "
            "no path"
        )
    return f"path {path!r} is outside the allowed paths {patterns} (allowed_paths in {RULES_FILE})"


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
        :data:`DEFAULT_ALLOWED_PATHS`, and an empty tuple allows nothing. The hard floor
        (:func:`floor_refusal`) applies whatever they say.
    :param allowed_sql_functions: function names (plain identifiers) the read-only SQL guard lets a probe call
        besides its own list; empty by default.
    :param version: the rules file format, :data:`RULES_VERSION`.
    :raises RulesError: if a fix type is unknown, a path glob is absolute, leaves the project or has an
        invalid character class, or a function name is not a plain identifier.
    """

    auto_propose: tuple[str, ...] = FIX_TYPES
    review_tier: tuple[str, ...] = DEFAULT_REVIEW_TIER
    protected_models: tuple[str, ...] = ()
    allowed_paths: tuple[str, ...] = DEFAULT_ALLOWED_PATHS
    allowed_sql_functions: tuple[str, ...] = ()
    version: int = RULES_VERSION

    def __post_init__(self) -> None:
        for name in (
            "auto_propose",
            "review_tier",
            "protected_models",
            "allowed_paths",
            "allowed_sql_functions",
        ):
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
            problem = _pattern_problem(pattern)
            if problem is not None:
                raise RulesError(f"allowed_paths entry {pattern!r} {problem}")
        for function in self.allowed_sql_functions:
            if not isinstance(function, str) or not _IDENTIFIER.fullmatch(function):
                raise RulesError(
                    f"allowed_sql_functions entry {function!r} must be a plain identifier (letters, digits, "
                    "'_' and '$', not starting with a digit)"
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
        Whether a patch may touch a file: the hard floor lets it through and a glob in ``allowed_paths`` matches.

        :param path: project-relative, e.g. ``models/staging/stg_orders.sql``; backslashes are read as ``/``
            and ``.`` or empty parts dropped.
        :return: True if :meth:`path_refusal` of the normalized path is None; always False for an absolute
            path or one with a ``..`` part.
        """
        normalized = _normalize_path(path)
        return normalized is not None and self.path_refusal(normalized) is None

    def path_refusal(self, path: str) -> str | None:
        """
        Why a patch may not touch a file, naming the path and the rule that refused it.

        :param path: a plain project-relative POSIX path, as a plan names it.
        :return: see :func:`path_refusal`; None if the patch may touch it.
        """
        return path_refusal(path, self.allowed_paths)

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
            "allowed_sql_functions": list(self.allowed_sql_functions),
        }


def _pattern_problem(pattern: str) -> str | None:
    """What is wrong with an ``allowed_paths`` glob, or None."""
    if _normalize_path(pattern) is None:
        return "must be a relative path inside the dbt project"
    try:
        glob_regex(pattern)
    except re.error as exc:
        return f"is not a valid glob ({exc})"
    return None


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
    for key in ("auto_propose", "review_tier", "protected_models", "allowed_paths", "allowed_sql_functions"):
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
        problem = _pattern_problem(pattern)
        if problem is not None:
            where = _where(path, _item_node(nodes, "allowed_paths", position))
            raise RulesError(f"allowed_paths entry {pattern!r} {problem} {where}")
    for position, function in enumerate(values.get("allowed_sql_functions", ())):
        if not _IDENTIFIER.fullmatch(function):
            where = _where(path, _item_node(nodes, "allowed_sql_functions", position))
            raise RulesError(
                f"allowed_sql_functions entry {function!r} must be a plain identifier (letters, digits, '_' and "
                f"'$', not starting with a digit) {where}"
            )
    return RulesConfig(version=RULES_VERSION, **values)


def _item_node(nodes: Mapping[str, tuple[yaml.Node, yaml.Node]], key: str, position: int) -> yaml.Node:
    value_node = nodes[key][1]
    if isinstance(value_node, yaml.SequenceNode) and position < len(value_node.value):
        item: yaml.Node = value_node.value[position]
        return item
    return value_node
