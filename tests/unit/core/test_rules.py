from __future__ import annotations

import pytest

from airflow_selfheal.core.rules import (
    DEFAULT_ALLOWED_PATHS,
    DEFAULT_REVIEW_TIER,
    FIX_TYPES,
    RulesConfig,
    RulesError,
    load_rules,
)

EXAMPLE = """\
# .selfheal/rules.yml in the dbt project
version: 1
auto_propose: [column_rename, type_cast, drop_unused_column, source_table_rename, dedup, accepted_values]
review_tier: [dedup, accepted_values]      # proposed but marked "review" in the page
protected_models: [fct_orders]             # never edited; escalate instead
allowed_paths: ["models/staging/**", "models/_sources.yml", "models/**/*.yml"]
"""


class TestLoadRules:
    def test_example_file(self) -> None:
        rules = load_rules(EXAMPLE)
        assert rules == RulesConfig(
            auto_propose=FIX_TYPES,
            review_tier=("dedup", "accepted_values"),
            protected_models=("fct_orders",),
            allowed_paths=("models/staging/**", "models/_sources.yml", "models/**/*.yml"),
        )
        assert rules.tier("dedup") == "review"
        assert rules.tier("column_rename") == "auto"
        assert rules.is_protected("FCT_ORDERS")
        assert not rules.is_protected("stg_orders")

    @pytest.mark.parametrize(
        "text",
        [
            pytest.param(None, id="no-file"),
            pytest.param("", id="empty"),
            pytest.param("# only a comment\n", id="comment-only"),
            pytest.param("version: 1\n", id="version-only"),
        ],
    )
    def test_defaults_when_absent(self, text: str | None) -> None:
        rules = load_rules(text)
        assert rules.auto_propose == FIX_TYPES
        assert rules.review_tier == DEFAULT_REVIEW_TIER
        assert rules.protected_models == ()
        assert rules.allowed_paths == DEFAULT_ALLOWED_PATHS
        assert rules.is_path_allowed("models/staging/stg_orders.sql")
        assert rules.is_path_allowed("tests/selfheal_guard_raw_orders_columns.sql")
        assert not rules.is_path_allowed("tests/assert_order_payments_reconcile.sql")
        assert not rules.is_path_allowed("dbt_project.yml")

    def test_partial_file_keeps_other_defaults(self) -> None:
        rules = load_rules("auto_propose: [column_rename]\n")
        assert rules.allows("column_rename")
        assert not rules.allows("dedup")
        assert rules.review_tier == DEFAULT_REVIEW_TIER
        assert rules.allowed_paths == DEFAULT_ALLOWED_PATHS

    def test_empty_lists_mean_nothing(self) -> None:
        rules = load_rules("auto_propose: []\nallowed_paths: []\n")
        assert not any(rules.allows(fix_type) for fix_type in FIX_TYPES)
        assert not rules.is_path_allowed("models/staging/stg_orders.sql")

    def test_duplicates_are_collapsed(self) -> None:
        rules = load_rules("protected_models: [fct_orders, fct_orders]\n")
        assert rules.protected_models == ("fct_orders",)

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            pytest.param(
                "version: 1\nauto_proposed: [dedup]\n",
                r"unknown key 'auto_proposed' \(\.selfheal/rules\.yml, line 2\); did you mean 'auto_propose'",
                id="unknown-key",
            ),
            pytest.param(
                "version: 1\nauto_propose:\n  - column_rename\n  - regex_replace\n",
                r"unknown fix type 'regex_replace' in auto_propose \(\.selfheal/rules\.yml, line 4\)",
                id="unknown-fix-type",
            ),
            pytest.param(
                "review_tier: [dedupe]\n",
                r"unknown fix type 'dedupe' in review_tier \(.*line 1\); did you mean 'dedup'",
                id="unknown-review-type",
            ),
            pytest.param("version: 2\n", r"unsupported version 2 \(.*line 1\)", id="future-version"),
            pytest.param("version: true\n", r"unsupported version True", id="boolean-version"),
            pytest.param(
                "protected_models: fct_orders\n",
                r"protected_models must be a list of strings, got str \(.*line 1\)",
                id="scalar-instead-of-list",
            ),
            pytest.param(
                "protected_models:\n  - fct_orders\n  - 3\n",
                r"protected_models entries must be non-empty strings, got 3 \(.*line 3\)",
                id="non-string-entry",
            ),
            pytest.param(
                "allowed_paths: ['../outside/**']\n",
                r"allowed_paths entry '\.\./outside/\*\*' must be a relative path inside the dbt project",
                id="path-leaves-project",
            ),
            pytest.param(
                "allowed_paths: ['/etc/**']\n",
                r"allowed_paths entry '/etc/\*\*' must be a relative path",
                id="absolute-path",
            ),
            pytest.param(
                "protected_models: [a]\nprotected_models: [b]\n",
                r"key 'protected_models' appears twice \(.*line 2\)",
                id="duplicate-key",
            ),
            pytest.param("- dedup\n", r"must be a mapping of keys, got list", id="not-a-mapping"),
            pytest.param(
                "auto_propose: [dedup\n",
                r"not valid YAML \(\.selfheal/rules\.yml, line 2\)",
                id="invalid-yaml",
            ),
        ],
    )
    def test_strict_validation_names_key_and_line(self, text: str, message: str) -> None:
        with pytest.raises(RulesError, match=message):
            load_rules(text)

    def test_error_names_the_given_path(self) -> None:
        with pytest.raises(RulesError, match=r"\(project/.selfheal/rules.yml, line 1\)"):
            load_rules("nope: 1\n", path="project/.selfheal/rules.yml")

    def test_constructor_validates_too(self) -> None:
        with pytest.raises(RulesError, match="unknown fix type 'rewrite_everything' in auto_propose"):
            RulesConfig(auto_propose=("rewrite_everything",))

    def test_to_dict_round_trips_through_the_loader(self) -> None:
        import yaml

        rules = load_rules(EXAMPLE)
        assert load_rules(yaml.safe_dump(rules.to_dict())) == rules


class TestIsPathAllowed:
    @pytest.mark.parametrize(
        ("patterns", "path", "allowed"),
        [
            pytest.param(
                ("models/staging/**",), "models/staging/stg_orders.sql", True, id="double-star-file"
            ),
            pytest.param(("models/staging/**",), "models/staging/sub/x.sql", True, id="double-star-nested"),
            pytest.param(("models/staging/**",), "models/marts/fct_orders.sql", False, id="other-folder"),
            pytest.param(("models/**/*.yml",), "models/_sources.yml", True, id="zero-directories"),
            pytest.param(("models/**/*.yml",), "models/staging/_sources.yml", True, id="one-directory"),
            pytest.param(("models/**/*.yml",), "models/staging/stg_orders.sql", False, id="wrong-suffix"),
            pytest.param(("models/*.yml",), "models/staging/_sources.yml", False, id="star-stays-in-folder"),
            pytest.param(("models/_sources.yml",), "models/_sources.yml", True, id="exact"),
            pytest.param(("models/stg_?.sql",), "models/stg_a.sql", True, id="question-mark"),
            pytest.param(("models/stg_[ab].sql",), "models/stg_c.sql", False, id="character-class"),
            pytest.param(("models/**",), "./models/x.sql", True, id="dot-prefix-normalised"),
            pytest.param(("models/**",), "models\\staging\\x.sql", True, id="backslashes"),
            pytest.param(("models/**",), "models/../dbt_project.yml", False, id="dot-dot-never"),
            pytest.param(("**",), "/etc/passwd", False, id="absolute-never"),
            pytest.param(("**",), "", False, id="empty-never"),
        ],
    )
    def test_globs(self, patterns: tuple[str, ...], path: str, allowed: bool) -> None:
        assert RulesConfig(allowed_paths=patterns).is_path_allowed(path) is allowed


class TestAllowedSqlFunctions:
    def test_default_is_empty(self) -> None:
        assert load_rules(None).allowed_sql_functions == ()
        assert load_rules("version: 1\n").allowed_sql_functions == ()

    def test_parsed_stripped_and_deduplicated(self) -> None:
        rules = load_rules("allowed_sql_functions: [my_udf, ' approx_top_k ', my_udf, SYSTEM$TYPEOF]\n")
        assert rules.allowed_sql_functions == ("my_udf", "approx_top_k", "SYSTEM$TYPEOF")
        assert rules.to_dict()["allowed_sql_functions"] == ["my_udf", "approx_top_k", "SYSTEM$TYPEOF"]

    def test_round_trips_through_the_loader(self) -> None:
        import yaml

        rules = load_rules(EXAMPLE + "allowed_sql_functions: [my_udf]\n")
        assert load_rules(yaml.safe_dump(rules.to_dict())) == rules

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            pytest.param(
                "allowed_sql_functions:\n  - my_udf\n  - util.my_udf\n",
                r"allowed_sql_functions entry 'util\.my_udf' must be a plain identifier .*\(.*line 3\)",
                id="qualified",
            ),
            pytest.param(
                "allowed_sql_functions: ['drop table x']\n",
                r"allowed_sql_functions entry 'drop table x' must be a plain identifier",
                id="statement",
            ),
            pytest.param(
                "allowed_sql_functions: ['1abc']\n",
                r"entry '1abc' must be a plain identifier",
                id="leading-digit",
            ),
            pytest.param(
                "allowed_sql_functions: my_udf\n",
                r"allowed_sql_functions must be a list of strings, got str \(.*line 1\)",
                id="scalar",
            ),
            pytest.param(
                "allowed_sql_functions: [my_udf()]\n",
                r"entry 'my_udf\(\)' must be a plain identifier",
                id="call",
            ),
        ],
    )
    def test_only_identifiers(self, text: str, message: str) -> None:
        with pytest.raises(RulesError, match=message):
            load_rules(text)

    def test_constructor_validates_too(self) -> None:
        with pytest.raises(RulesError, match="allowed_sql_functions entry 'a-b' must be a plain identifier"):
            RulesConfig(allowed_sql_functions=("a-b",))


class TestTheFloorUnderTheGlobs:
    @pytest.mark.parametrize(
        "path",
        [
            "profiles.yml",
            "dbt_project.yml",
            "packages.yml",
            "dependencies.yml",
            "macros/x.sql",
            ".selfheal/rules.yml",
            "target/manifest.json",
            ".git/hooks/pre-commit",
            "models/.git/config",
        ],
    )
    def test_star_star_does_not_open_it(self, path: str) -> None:
        assert not load_rules("allowed_paths: ['**']\n").is_path_allowed(path)

    def test_an_exact_path_does(self) -> None:
        rules = load_rules("allowed_paths: ['models/**', dbt_project.yml, macros/cents_to_dollars.sql]\n")
        assert rules.is_path_allowed("dbt_project.yml")
        assert rules.is_path_allowed("macros/cents_to_dollars.sql")
        assert not rules.is_path_allowed("macros/other.sql")
        assert rules.path_refusal("macros/other.sql") == (
            "the writable floor refuses 'macros/other.sql': it is outside models/, tests/, snapshots/ and seeds/; "
            "only an exact path in allowed_paths in .selfheal/rules.yml allows it"
        )
