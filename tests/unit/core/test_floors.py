"""
The floors no rules file and no proposer can lower: no Jinja from outside, and no write outside the project's code.

Property-based (Hypothesis, repeatable profile from ``tests/conftest.py``): generated text with a Jinja delimiter
anywhere is refused and clean text passes, as dbt's own renderer decides; generated paths (``..``, ``./``,
``//``, backslashes, unicode, ``.git`` at any depth, ``Profiles.yml`` and other spellings, trailing slashes)
never get past the writable floor, whatever the allow-list says.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_selfheal.core.fixes import Escalation, FixPlan, jinja_refusal, plan_refusal
from airflow_selfheal.core.guards import (
    JINJA_DELIMITERS,
    UnsafeTextError,
    assert_no_jinja,
    jinja_delimiters,
)
from airflow_selfheal.core.repair.proposers import ProposalRequest, next_plan
from airflow_selfheal.core.rules import (
    RulesConfig,
    floor_refusal,
    glob_regex,
    load_rules,
    path_refusal,
)
from tests.unit.core.fixes.hostile import (
    DELIMITER_SPELLINGS,
    PAYLOADS,
    allow_lists,
    clean_text,
    escape,
    hostile_text,
    raw_paths,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

# ---------------------------------------------------------------------------------------------------------------
# No Jinja from outside
# ---------------------------------------------------------------------------------------------------------------

MODEL = """\
{{ config(materialized='view') }}
-- the checkout contact, as it is upstream
select
    order_id,
    "Customer Email" as customer_email,
    'placed' as status
from {{ source('raw', 'orders') }}
"""
PROPERTIES = """\
version: 2
models:
  - name: stg_orders
    columns:
      - name: status
        data_tests:
          - accepted_values:
              values: ["placed", "shipped"]
"""


class TestAssertNoJinja:
    @given(hostile_text())
    def test_text_with_a_delimiter_anywhere_is_refused(self, text: str) -> None:
        with pytest.raises(
            UnsafeTextError, match=r"^refusing the failing value .*: it holds the Jinja delimiter"
        ):
            assert_no_jinja(text, what="the failing value")

    @given(clean_text)
    def test_clean_text_passes_unchanged(self, text: str) -> None:
        assert assert_no_jinja(text, what="the failing value") == text

    @given(clean_text | hostile_text())
    def test_refuses_exactly_what_dbt_would_render(self, text: str) -> None:
        # dbt skips Jinja for a string without these characters; anything it would render is refused.
        from dbt.clients.jinja import _HAS_RENDER_CHARS_PAT

        refused = bool(jinja_delimiters(text))
        assert refused == bool(_HAS_RENDER_CHARS_PAT.search(text))

    @given(clean_text)
    def test_jinja_reads_clean_text_as_plain_data(self, text: str) -> None:
        # dbt's own environment: default delimiters, no line statements or line comments.
        from dbt_common.clients.jinja import get_environment

        environment = get_environment()
        assert environment.line_statement_prefix is None
        assert environment.line_comment_prefix is None
        assert {token for _, token, _ in environment.lex(text)} <= {"data"}

    @pytest.mark.parametrize(
        ("value", "delimiter"),
        [
            pytest.param('"CONTACT_{{EMAIL"', "{{", id="quoted-identifier"),
            pytest.param("'lost{%- x'", "{%", id="string-literal-whitespace-control"),
            pytest.param("-- renamed #} upstream", "#}", id="sql-comment"),
            pytest.param("value: a}}", "}}", id="yaml-value"),
            pytest.param("50%}", "%}", id="closer"),
            pytest.param("{#", "{#", id="comment-opener"),
            pytest.param("{{{", "{{", id="overlapping"),
        ],
    )
    def test_names_the_delimiter(self, value: str, delimiter: str) -> None:
        with pytest.raises(UnsafeTextError, match=re.escape(f"the Jinja delimiter {delimiter!r}")):
            assert_no_jinja(value, what="the new column name")

    @pytest.mark.parametrize(
        "value", ["CONTACT_EMAIL", "{ x }", "100%", "#1", "a}b{c", 42, 3.5, "{}", "%%", "}{"]
    )
    def test_braces_that_are_not_delimiters_pass(self, value: object) -> None:
        assert assert_no_jinja(value, what="the value") == str(value)

    def test_delimiters_are_counted_where_they_overlap(self) -> None:
        assert jinja_delimiters("{{{ x }}}") == {"{{": 2, "}}": 2}
        assert jinja_delimiters("{%}") == {"{%": 1, "%}": 1}
        assert set(JINJA_DELIMITERS) == {"{{", "{%", "{#", "}}", "%}", "#}"}


class TestJinjaRefusal:
    @given(st.sampled_from([MODEL, PROPERTIES]), hostile_text(), st.data())
    def test_text_inserted_anywhere_in_a_file_is_refused(
        self, original: str, inserted: str, data: Any
    ) -> None:
        # At a random position: in an identifier, a string literal, a comment, a YAML value, or inside Jinja.
        position = data.draw(st.integers(min_value=0, max_value=len(original)))
        changed = original[:position] + inserted + original[position:]
        reason = jinja_refusal({"models/x.sql": changed}, {"models/x.sql": original})
        assert reason is not None
        assert reason.startswith("the new models/x.sql gains Jinja delimiters the original did not have (")

    @given(st.sampled_from([MODEL, PROPERTIES]), clean_text, st.data())
    def test_clean_text_inserted_between_tokens_passes(self, original: str, inserted: str, data: Any) -> None:
        # Next to a newline no delimiter can form across the seam; clean text then adds none.
        seams = [index for index, char in enumerate(original) if char == "\n"]
        position = data.draw(st.sampled_from(seams))
        changed = original[:position] + "\n" + inserted + "\n" + original[position:]
        assert jinja_refusal({"models/x.sql": changed}, {"models/x.sql": original}) is None

    @pytest.mark.parametrize(
        "guard",
        [
            pytest.param(
                "{{ config(severity='warn') }}\nselect 1 from {{ source('raw', 'orders') }} where false\n",
                id="guard-test",
            ),
            pytest.param("select * from {{ ref('stg_orders') }}\n", id="ref"),
            pytest.param('select * from {{- ref("shop", "stg_orders") -}}\n', id="ref-package"),
        ],
    )
    def test_a_new_file_may_name_relations(self, guard: str) -> None:
        assert jinja_refusal({"tests/selfheal_guard_x.sql": guard}, {}) is None

    @pytest.mark.parametrize(
        "text",
        [
            pytest.param("select {{ run_query('drop table x') }}\n", id="run-query"),
            pytest.param("{{ config(pre_hook='drop table x') }}\nselect 1\n", id="hook"),
            pytest.param(
                "select * from {{ source('raw', 'orders' ~ run_query('x')) }}\n", id="source-with-code"
            ),
            pytest.param("select * from {{{ source('raw', 'orders') }}\n", id="extra-brace"),
            pytest.param("-- {# hidden #}\nselect 1\n", id="comment"),
        ],
    )
    def test_a_new_file_may_hold_no_other_jinja(self, text: str) -> None:
        assert jinja_refusal({"tests/selfheal_guard_x.sql": text}, {}) is not None

    def test_an_existing_file_may_keep_and_drop_its_jinja(self) -> None:
        dropped = MODEL.replace("{{ config(materialized='view') }}\n", "")
        assert jinja_refusal({"models/x.sql": dropped}, {"models/x.sql": MODEL}) is None
        doubled = MODEL + "-- {{ config(materialized='view') }}\n"
        assert jinja_refusal({"models/x.sql": doubled}, {"models/x.sql": MODEL}) == (
            "the new models/x.sql gains Jinja delimiters the original did not have ('{{' x1, '}}' x1); a plan "
            "must not add Jinja, which dbt would run in validation and in production"
        )


# ---------------------------------------------------------------------------------------------------------------
# Globs: gitignore's meaning, checked against Python 3.13's PurePosixPath.full_match
# ---------------------------------------------------------------------------------------------------------------

# (glob, path, PurePosixPath(path).full_match(glob) on Python 3.13.0)
FULL_MATCH = [
    ("models/**", "models/a.sql", True),
    ("models/**", "models/a/b/c.sql", True),
    ("models/**", "models", False),
    ("models/**", "models/.git/config", True),  # the globs match it; the floor refuses it
    ("models/**/*.yml", "models/x.yml", True),
    ("models/**/*.yml", "models/a/b/x.yml", True),
    ("models/**/*.yml", "models/a/x.sql", False),
    ("models/*.yml", "models/a/x.yml", False),
    ("models/*", "models/.hidden", True),
    ("*", "profiles.yml", True),
    ("*", "models/x.sql", False),
    ("**", "models/x.sql", True),
    ("**/x.sql", "x.sql", True),
    ("**/x.sql", "a/b/x.sql", True),
    ("a/**/b", "a/b", True),
    ("a/**/b", "a/x/y/b", True),
    ("a**b", "ab", True),
    ("a**b", "a/b", False),
    ("a*", "a/b", False),
    ("a?b", "a/b", False),
    ("a?b", "axb", True),
    ("a[xy]b", "axb", True),
    ("a[xy]b", "azb", False),
    ("a[!x]b", "ayb", True),
    ("a[!x]b", "axb", False),
    ("a[.-0]b", "a.b", True),
    ("[]]", "]", True),
    ("[!]]", "a", True),
    ("[!]]", "]", False),
    ("[!]", "[!]", True),
    ("a[b", "a[b", True),
    ("[a-]", "-", True),
    ("models/stg_?.sql", "models/stg_a.sql", True),
    ("tests/selfheal_guard_*.sql", "tests/selfheal_guard_x.sql", True),
    ("tests/selfheal_guard_*.sql", "tests/sub/selfheal_guard_x.sql", False),
    ("Models/**", "models/x.sql", False),
    ("models/**", "Models/x.sql", False),
    ("*/**", "models/x/y.sql", True),
    ("models/[!s]*/**", "models/staging/x.sql", False),
    ("models/[!s]*/**", "models/marts/x.sql", True),
]
# Where gitignore and this module part from Python: a class never matches "/" (full_match says True to both).
CLASS_NEVER_CROSSES = [("a[!x]b", "a/b"), ("a[.-0]b", "a/b"), ("a[^x]b", "a/b"), ("[!a]", "/")]


def _reference_match(pattern: str, path: str) -> bool:
    """gitignore matching built another way: segment by segment with fnmatch, ``**`` spanning segments."""
    import fnmatch

    def match(pattern_parts: Sequence[str], path_parts: Sequence[str]) -> bool:
        if not pattern_parts:
            return not path_parts
        head, rest = pattern_parts[0], pattern_parts[1:]
        if head == "**":
            if not rest:
                return bool(path_parts)
            return any(match(rest, path_parts[skip:]) for skip in range(len(path_parts) + 1))
        return bool(path_parts) and fnmatch.fnmatchcase(path_parts[0], head) and match(rest, path_parts[1:])

    return match(pattern.split("/"), path.split("/"))


_GLOB_SEGMENT = st.sampled_from(
    ["**", "*", "?", "a", "b", "[ab]", "[!a]", "a*", "*b", "[.-0]", "[!]]", ".git"]
)
_PATH_SEGMENT = st.sampled_from(["a", "b", "ab", "ba", ".", "-", "]", ".git", "x", "aa"])


class TestGlobs:
    @pytest.mark.parametrize(
        ("pattern", "path", "expected"),
        [pytest.param(*case, id=f"{case[0]} {case[1]}") for case in FULL_MATCH],
    )
    def test_as_full_match(self, pattern: str, path: str, expected: bool) -> None:
        assert bool(glob_regex(pattern).fullmatch(path)) is expected

    @pytest.mark.parametrize(
        ("pattern", "path"), [pytest.param(*case, id=f"{case[0]} {case[1]}") for case in CLASS_NEVER_CROSSES]
    )
    def test_a_class_never_matches_a_slash(self, pattern: str, path: str) -> None:
        assert glob_regex(pattern).fullmatch(path) is None

    @given(st.lists(_GLOB_SEGMENT, min_size=1, max_size=4), st.lists(_PATH_SEGMENT, min_size=1, max_size=5))
    def test_agrees_with_segment_wise_fnmatch(self, pattern_parts: list[str], path_parts: list[str]) -> None:
        pattern, path = "/".join(pattern_parts), "/".join(path_parts)
        assert bool(glob_regex(pattern).fullmatch(path)) is _reference_match(pattern, path)

    @given(
        st.lists(_GLOB_SEGMENT.filter(lambda part: part != "**"), min_size=1, max_size=4),
        st.lists(_PATH_SEGMENT, min_size=1, max_size=5),
    )
    def test_without_double_star_a_match_has_as_many_segments(
        self, pattern_parts: list[str], path_parts: list[str]
    ) -> None:
        if glob_regex("/".join(pattern_parts)).fullmatch("/".join(path_parts)):
            assert len(pattern_parts) == len(path_parts)

    def test_an_invalid_class_is_refused_when_loaded(self) -> None:
        from airflow_selfheal.core.rules import RulesError

        with pytest.raises(
            RulesError, match=r"allowed_paths entry 'models/\[z-a\]\.sql' is not a valid glob .*line 1"
        ):
            load_rules("allowed_paths: ['models/[z-a].sql']\n")


# ---------------------------------------------------------------------------------------------------------------
# The writable floor
# ---------------------------------------------------------------------------------------------------------------


class TestWritableFloor:
    @settings(max_examples=2000)  # a check takes microseconds: many more paths than the profile's default
    @given(raw_paths(), allow_lists)
    def test_no_generated_path_escapes_whatever_the_allow_list(self, path: str, allowed: list[str]) -> None:
        if path_refusal(path, allowed) is None:
            assert escape(path, allowed) is None
        rules = RulesConfig(allowed_paths=tuple(allowed))
        if rules.is_path_allowed(path):  # normalizing "./" and "\\" first, then the same floor
            normalized = "/".join(
                part for part in path.replace("\\", "/").split("/") if part not in ("", ".")
            )
            assert escape(normalized, allowed) is None

    @given(raw_paths())
    def test_refusals_name_the_path_and_the_rule(self, path: str) -> None:
        refused = path_refusal(path, ["**"])
        if refused is not None:
            assert repr(path) in refused or "must be a non-empty string" in refused
            assert re.search(r"writable floor|must|absolute|outside the allowed paths", refused)

    @pytest.mark.parametrize(
        ("path", "allowed", "message"),
        [
            pytest.param(
                "profiles.yml",
                ["**"],
                "the writable floor refuses 'profiles.yml': a file named profiles.yml holds dbt's settings; only an "
                "exact path in allowed_paths in .selfheal/rules.yml allows it",
                id="profiles",
            ),
            pytest.param(
                "Profiles.yml", ["**"], "a file named profiles.yml holds dbt's settings", id="profiles-case"
            ),
            pytest.param("dbt_project.yml", ["*"], "a file named dbt_project.yml", id="dbt-project"),
            pytest.param("packages.yml", ["**"], "a file named packages.yml", id="packages"),
            pytest.param(
                "models/dependencies.yml", ["**"], "a file named dependencies.yml", id="nested-dependencies"
            ),
            pytest.param(
                "macros/drop_all.sql",
                ["**"],
                "the writable floor refuses 'macros/drop_all.sql': it is outside models/, tests/, snapshots/ and "
                "seeds/; only an exact path in allowed_paths in .selfheal/rules.yml allows it",
                id="macros",
            ),
            pytest.param(".selfheal/rules.yml", ["**"], "a .selfheal folder", id="rules-file"),
            pytest.param("target/manifest.json", ["**"], "outside models/", id="target"),
            pytest.param("logs/dbt.log", ["**"], "outside models/", id="logs"),
            pytest.param("dbt_packages/utils/macros/x.sql", ["**"], "outside models/", id="dbt-packages"),
            pytest.param(
                ".git/hooks/pre-commit",
                ["**", ".git/hooks/pre-commit"],
                "the writable floor refuses '.git/hooks/pre-commit': it is inside a .git folder, which no plan may "
                "write",
                id="git-hooks-even-named",
            ),
            pytest.param(
                "models/.git/config", ["models/**"], "inside a .git folder", id="nested-git-default"
            ),
            pytest.param("models/.GIT/config", ["models/**"], "inside a .git folder", id="git-case"),
            pytest.param("models/.git./config", ["models/**"], "inside a .git folder", id="git-trailing-dot"),
            pytest.param(
                "models/.g\u200cit/config", ["models/**"], "inside a .git folder", id="git-hfs-ignorable"
            ),
            pytest.param("models/.git", ["models/**"], "inside a .git folder", id="gitlink-file"),
            pytest.param("models/GIT~1/config", ["models/**"], "inside a .git folder", id="git-short-name"),
            pytest.param("Models/x.sql", ["**"], "outside models/", id="root-case"),
            pytest.param("models", ["**"], "outside models/", id="root-itself"),
            pytest.param(
                "models/x.sql",
                [],
                "allowed_paths in .selfheal/rules.yml is empty, which allows no path",
                id="empty-list",
            ),
            pytest.param(
                "seeds/x.csv", ["models/**"], "outside the allowed paths ['models/**']", id="glob-miss"
            ),
            pytest.param("models/../profiles.yml", ["**"], "must not contain '..'", id="dotdot"),
            pytest.param("models\\x.sql", ["**"], "backslashes", id="backslash"),
            pytest.param("models/x/", ["**"], "empty parts", id="trailing-slash"),
        ],
    )
    def test_refused(self, path: str, allowed: list[str], message: str) -> None:
        refused = path_refusal(path, allowed)
        assert refused is not None
        assert message in refused

    @pytest.mark.parametrize(
        ("path", "allowed"),
        [
            pytest.param("dbt_project.yml", ["dbt_project.yml"], id="exact-settings"),
            pytest.param(
                "macros/cents_to_dollars.sql", ["**", "macros/cents_to_dollars.sql"], id="exact-macro"
            ),
            pytest.param(".selfheal/rules.yml", ["./.selfheal/rules.yml"], id="exact-normalized"),
            pytest.param("models/staging/stg_orders.sql", ["models/**"], id="model"),
            pytest.param("snapshots/orders.sql", ["**"], id="snapshot"),
            pytest.param("seeds/countries.csv", ["seeds/*.csv"], id="seed"),
            pytest.param("models/logs/log_events.sql", ["models/**"], id="a-model-folder-named-logs"),
            pytest.param("models/caf\u00e9.sql", ["models/**"], id="unicode-model"),
        ],
    )
    def test_allowed(self, path: str, allowed: list[str]) -> None:
        assert path_refusal(path, allowed) is None

    def test_exact_means_exact(self) -> None:
        assert floor_refusal("dbt_project.yml", ["dbt_project.ym?"]) is not None
        assert floor_refusal("Dbt_project.yml", ["dbt_project.yml"]) is not None
        assert floor_refusal("macros/x.sql", ["macros/[x].sql"]) is not None

    def test_the_default_allow_list_still_refuses_nested_git(self) -> None:
        rules = load_rules(None)
        assert rules.is_path_allowed("models/staging/stg_orders.sql")
        assert not rules.is_path_allowed("models/.git/config")
        assert not rules.is_path_allowed("models/.git/hooks/post-checkout")

    def test_an_empty_allow_list_allows_nothing(self) -> None:
        rules = load_rules("allowed_paths: []\n")
        assert rules.allowed_paths == ()
        assert rules.path_refusal("models/x.sql") == (
            "path 'models/x.sql' is outside the allowed paths: allowed_paths in .selfheal/rules.yml is empty, "
            "which allows no path"
        )


# ---------------------------------------------------------------------------------------------------------------
# Every proposer's plan passes the same floors
# ---------------------------------------------------------------------------------------------------------------


class _Scripted:
    """A stand-in for an LLM proposer: returns one fixed plan."""

    def __init__(self, name: str, changes: dict[str, str]) -> None:
        self.name = name
        self.changes = changes

    def propose(self, request: ProposalRequest) -> FixPlan | Escalation:
        return FixPlan(
            fix_type="column_rename",
            tier="review",
            rationale="r",
            changes=self.changes,
            guard_tests={},
            priority=1,
        )


def _request(rules: RulesConfig | None = None) -> ProposalRequest:
    return ProposalRequest(
        incident={"incident_id": "inc-1"},
        triage={},
        project_files={"models/stg_orders.sql": MODEL},
        manifest={},
        rules=rules or RulesConfig(),
    )


class TestEveryPlan:
    @given(hostile_text())
    def test_a_proposer_adding_jinja_is_refused_and_the_escalation_says_why(self, inserted: str) -> None:
        changed = MODEL.replace("as status", f"as status -- {inserted}")
        outcome = next_plan([_Scripted("llm", {"models/stg_orders.sql": changed})], _request())
        assert isinstance(outcome, Escalation)
        assert outcome.reason.startswith(
            "its column_rename plan was refused: the new models/stg_orders.sql gains Jinja delimiters"
        )

    @pytest.mark.parametrize(
        ("path", "fragment"),
        [
            pytest.param("models/.git/hooks/post-checkout", "inside a .git folder", id="git"),
            pytest.param("profiles.yml", "a file named profiles.yml", id="profiles"),
            pytest.param("macros/x.sql", "outside models/", id="macros"),
        ],
    )
    def test_a_proposer_writing_past_the_floor_is_refused(self, path: str, fragment: str) -> None:
        outcome = next_plan([_Scripted("llm", {path: "x"})], _request(RulesConfig(allowed_paths=("**",))))
        assert isinstance(outcome, Escalation)
        assert outcome.reason.startswith(
            f"its column_rename plan was refused: the writable floor refuses {path!r}"
        )
        assert fragment in outcome.reason

    def test_the_next_proposer_is_asked_after_a_refusal(self) -> None:
        hostile = _Scripted("llm", {"models/stg_orders.sql": MODEL + "{{ run_query('drop table x') }}\n"})
        clean = _Scripted("backup", {"models/stg_orders.sql": MODEL.replace("order_id", "order_key")})
        chosen = next_plan([hostile, clean], _request())
        assert not isinstance(chosen, Escalation)
        assert chosen.proposer == "backup"

    def test_plan_refusal_checks_paths_first(self) -> None:
        assert plan_refusal({"profiles.yml": "{{ x }}"}, {}, ["**"]) == (
            "the writable floor refuses 'profiles.yml': a file named profiles.yml holds dbt's settings; only an "
            "exact path in allowed_paths in .selfheal/rules.yml allows it"
        )
        assert plan_refusal({"models/x.sql": "select 1\n"}, {}, ["models/**"]) is None


@pytest.mark.parametrize("payload", PAYLOADS)
def test_every_payload_holds_a_delimiter(payload: str) -> None:
    assert jinja_delimiters(payload)
    assert all(jinja_delimiters(spelling) for spelling in DELIMITER_SPELLINGS)
