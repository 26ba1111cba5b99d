"""The repair DAG's pages and the approval body."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from airflow_selfheal.core.pages.repair import approval_body
from tests.support.incidents import make_incident, rename_triage

TRIAGE = {"failure_class": "missing_column", "summary": "column gone", "root_cause": {"message": "rename"}}
PROD_VIEW_ERROR = (
    "002003 (42S02): SQL compilation error:\nView definition for 'DEMO.ANALYTICS.STG_ORDERS' declared 5 column(s), "
    "but view query produces 4 column(s)."
)


def shop_nodes(models: int = 8, tests: int = 33) -> list[dict[str, str]]:
    """A shop build's nodes: every model ``success``, every test ``pass``."""
    nodes = [{"unique_id": f"model.selfheal_demo.model_{i}", "status": "success"} for i in range(models)]
    nodes += [
        {"unique_id": f"test.selfheal_demo.not_null_model_{i}_id.81cfe2fe64", "status": "pass"}
        for i in range(tests)
    ]
    return nodes


def proposal(**overrides: Any) -> dict[str, Any]:
    """The validated proposal of the demo's rename fix; ``validation`` and ``data_diff`` keys replace theirs."""
    data: dict[str, Any] = {
        "fix_type": "column_rename",
        "tier": "auto",
        "rationale": "raw.orders.CUSTOMER_EMAIL was renamed to EMAIL_ADDRESS",
        "diff": "-    customer_email,\n+    email_address as customer_email,\n",
        "validation": {
            "select": "stg_orders+",
            "attempt": "attempt-1",
            "elapsed_seconds": 3.2,
            "nodes": [{"unique_id": "model.selfheal_demo.stg_orders", "status": "success"}],
        },
        "data_diff": {
            "relations": {
                "ANALYTICS.FCT_ORDERS": {
                    "status": "same",
                    "clone": {"row_count": 200},
                    "prod": {"row_count": 200},
                }
            }
        },
    }
    for key in ("validation", "data_diff"):
        if key in overrides:
            data[key] = {**data[key], **overrides.pop(key)}
    data.update(overrides)
    return data


def body_of(**overrides: Any) -> str:
    links = overrides.pop("links", ())
    return approval_body(make_incident(), TRIAGE, proposal(**overrides), links=links)


def section(body: str, heading: str) -> str:
    """The text under ``### <heading>`` up to the next heading or rule."""
    start = body.index(f"### {heading}")
    rest = body[start + len(heading) + 4 :]
    end = min(
        (index for index in (rest.find("\n### "), rest.find("\n---\n")) if index >= 0), default=len(rest)
    )
    return rest[:end]


class TestDiagnosis:
    def test_body_has_diagnosis_diff_validation_and_data_diff(self) -> None:
        body = body_of()
        for expected in (
            "### Diagnosis",
            "- Failure: `missing_column` in model `stg_orders` (task `shop.stg_orders.run`), pipeline `shop_pipeline`",
            "- Summary: column gone",
            "- Root cause: rename",
            "- Fix: `column_rename` (tier **auto**)",
            "- Why this fix: raw.orders.CUSTOMER_EMAIL was renamed to EMAIL_ADDRESS",
            "```diff\n-    customer_email,\n+    email_address as customer_email,\n```",
            "- `dbt build --select stg_orders+`: **passed** (attempt-1, 3.2s)",
            "- 1 model built, 0 failed, 0 warned",
            "| `ANALYTICS.FCT_ORDERS` | same row count and columns | 200 | 200 |",
            "Incident `inc-",
            "nothing reaches production before approval.",
        ):
            assert expected in body
        headings = re.findall(r"^### (.+)$", body, re.MULTILINE)
        assert headings == ["Diagnosis", "Diff", "Validation (in the clone)", "Data diff (clone vs prod)"]

    def test_long_rationale_keeps_its_first_sentences(self) -> None:
        first = (
            "The upstream column RAW.ORDERS.CUSTOMER_EMAIL was renamed to EMAIL_ADDRESS (confidence 0.90)."
        )
        second = "The model selects the old name, so the view no longer compiles."
        rest = " Aliasing the new column keeps every downstream model and test as it is." * 12
        body = body_of(rationale=f"{first}\n{second}{rest}")
        line = next(line for line in body.splitlines() if line.startswith("- Why this fix: "))
        assert line == f"- Why this fix: {first} {second} …"
        assert "Aliasing" not in body

    def test_first_sentence_longer_than_the_cap_is_cut_at_a_word(self) -> None:
        body = body_of(rationale="word " * 200)
        line = next(line for line in body.splitlines() if line.startswith("- Why this fix: "))
        assert len(line) <= len("- Why this fix: ") + 300
        assert line.endswith("word…")

    def test_two_short_sentences_stay_whole(self) -> None:
        body = body_of(rationale="Renamed upstream. Alias it.")
        assert "- Why this fix: Renamed upstream. Alias it.\n" in body

    def test_shop_incident_names_the_root_cause(self) -> None:
        body = approval_body(make_incident(), rename_triage(), proposal())
        assert "- Root cause: Upstream rename: RAW.ORDERS.CUSTOMER_EMAIL -> RAW.ORDERS.EMAIL_ADDRESS" in body


class TestDiff:
    def test_diff_content_is_unchanged(self) -> None:
        diff = "--- a/models/x.sql\n+++ b/models/x.sql\n@@ -1 +1 @@\n-select `a`\n+select *, | b |\n"
        body = body_of(diff=diff)
        assert f"```diff\n{diff.rstrip()}\n```\n" in body

    def test_fence_outlasts_a_fence_in_the_diff(self) -> None:
        diff = "+```\n+# not a heading\n ````sql\n"
        body = body_of(diff=diff)
        assert f"`````diff\n{diff.rstrip()}\n`````\n" in body
        assert re.findall(r"^### (.+)$", body, re.MULTILINE)[1:] == [
            "Diff",
            "Validation (in the clone)",
            "Data diff (clone vs prod)",
        ]

    def test_no_diff(self) -> None:
        assert "### Diff\n(empty)\n" in body_of(diff="")


class TestValidation:
    def test_counts_by_resource_type_and_no_line_per_passing_node(self) -> None:
        body = body_of(validation={"nodes": shop_nodes()})
        assert "- 8 models built, 33 tests passed, 0 failed, 0 warned\n" in body
        assert "not_null_model_0_id" not in body
        assert "Not passed" not in body

    def test_nodes_not_passed_are_listed_failures_first(self) -> None:
        nodes = shop_nodes(models=2, tests=2) + [
            {"unique_id": "test.selfheal_demo.accepted_values_status.1", "status": "warn"},
            {"unique_id": "model.selfheal_demo.fct_orders", "status": "skipped"},
            {"unique_id": "test.selfheal_demo.unique_order_id.2", "status": "fail"},
            {"unique_id": "seed.selfheal_demo.countries", "status": "success"},
        ]
        text = section(body_of(validation={"nodes": nodes}), "Validation (in the clone)")
        assert "**failed**" in text
        assert "- 2 models built, 1 seed loaded, 2 tests passed, 1 failed, 1 warned, 1 skipped" in text
        listed = re.findall(r"^  - `([^`]+)`: (\w+)$", text, re.MULTILINE)
        assert listed == [
            ("test.selfheal_demo.unique_order_id.2", "fail"),
            ("test.selfheal_demo.accepted_values_status.1", "warn"),
            ("model.selfheal_demo.fct_orders", "skipped"),
        ]
        assert "model_0" not in text

    def test_listing_is_capped(self) -> None:
        nodes = shop_nodes(models=1, tests=0) + [
            {"unique_id": f"test.selfheal_demo.warned_{i}.1", "status": "warn"} for i in range(25)
        ]
        text = section(body_of(validation={"nodes": nodes}), "Validation (in the clone)")
        assert "**passed**" in text
        assert "0 failed, 25 warned" in text
        assert len(re.findall(r"^  - `", text, re.MULTILINE)) == 10
        assert "  - and 15 more" in text

    def test_other_statuses_are_counted(self) -> None:
        nodes = [
            {"unique_id": "model.p.a", "status": "success"},
            {"unique_id": "model.p.b", "status": "no-op"},
        ]
        assert "1 model built, 0 failed, 0 warned, 1 with another status" in body_of(
            validation={"nodes": nodes}
        )

    def test_no_nodes(self) -> None:
        assert "- no nodes reported" in body_of(validation={"nodes": []})

    def test_body_stays_small_for_a_large_build(self) -> None:
        nodes = shop_nodes(models=60, tests=140)
        nodes[5]["status"] = "error"
        for index in range(100, 130):
            nodes[index]["status"] = "warn"
        relations = {
            f"ANALYTICS.MODEL_{i}": {"status": "same", "clone": {"row_count": i}, "prod": {"row_count": i}}
            for i in range(60)
        }
        body = body_of(
            rationale="A sentence about the fix. " * 200,
            validation={"nodes": nodes},
            data_diff={"relations": relations},
            links=[("This repair run", "http://airflow:8080/dags/selfheal_repair/runs/manual__1")],
        )
        assert len(body.encode()) < 12_000
        assert "59 models built, 110 tests passed, 1 failed, 30 warned" in body
        assert "and 21 more" in body  # 31 not passed, 10 listed
        assert "and 45 more relations" in body


class TestDataDiff:
    def test_prod_unreadable_failed_relation_says_so(self) -> None:
        relations = {
            "ANALYTICS.STG_ORDERS": {
                "status": "error",
                "clone": {"database": "CLONE", "columns": ["ORDER_ID"], "row_count": 200},
                "prod": {"database": "DEMO", "error": PROD_VIEW_ERROR},
            }
        }
        body = body_of(data_diff={"relations": relations})
        row = next(line for line in body.splitlines() if line.startswith("| `ANALYTICS.STG_ORDERS`"))
        assert "prod unreadable: it is the relation that failed" in row
        assert "View definition for 'DEMO.ANALYTICS.STG_ORDERS' declared 5 column(s)" in row
        assert row.endswith("| 200 | unreadable |")
        assert "| error |" not in body
        assert "None" not in body

    def test_unreadable_relation_that_did_not_fail_gives_the_reason_only(self) -> None:
        relations = {
            "ANALYTICS.FCT_ORDERS": {
                "status": "error",
                "clone": {"database": "CLONE", "error": "permission denied"},
                "prod": {"database": "DEMO", "columns": [], "row_count": 3},
            }
        }
        body = body_of(data_diff={"relations": relations})
        assert "| `ANALYTICS.FCT_ORDERS` | clone unreadable (`permission denied`) | unreadable | 3 |" in body
        assert "relation that failed" not in body

    def test_statuses_in_words_problems_first(self) -> None:
        relations = {
            "ANALYTICS.A_SAME": {"status": "same", "clone": {"row_count": 1}, "prod": {"row_count": 1}},
            "ANALYTICS.B_CHANGED": {
                "status": "changed",
                "clone": {"row_count": 205},
                "prod": {"row_count": 200},
                "row_count_delta": 5,
                "columns_added": ["EMAIL_ADDRESS"],
                "columns_removed": ["CUSTOMER_EMAIL"],
                "type_changes": {"AMOUNT": {"prod": "NUMBER", "clone": "FLOAT"}},
            },
            "ANALYTICS.C_NEW": {"status": "new", "clone": {"row_count": 3}, "prod": None},
            "ANALYTICS.D_GONE": {"status": "missing_in_clone", "clone": None, "prod": {"row_count": 9}},
            "ANALYTICS.E_FEWER": {
                "status": "changed",
                "clone": {"row_count": 199},
                "prod": {"row_count": 200},
                "row_count_delta": -1,
            },
        }
        rows = [
            line
            for line in section(
                body_of(data_diff={"relations": relations}), "Data diff (clone vs prod)"
            ).splitlines()
            if line.startswith("| `")
        ]
        assert rows == [
            "| `ANALYTICS.D_GONE` | not built in the clone | absent | 9 |",
            "| `ANALYTICS.B_CHANGED` | changed: +5 rows; added `EMAIL_ADDRESS`; removed `CUSTOMER_EMAIL`; "
            "type changed `AMOUNT` | 205 | 200 |",
            "| `ANALYTICS.E_FEWER` | changed: -1 row | 199 | 200 |",
            "| `ANALYTICS.C_NEW` | new: not in prod | 3 | absent |",
            "| `ANALYTICS.A_SAME` | same row count and columns | 1 | 1 |",
        ]

    def test_rows_are_capped(self) -> None:
        relations = {
            f"ANALYTICS.M_{i:02d}": {"status": "same", "clone": {"row_count": 1}, "prod": {"row_count": 1}}
            for i in range(20)
        }
        text = section(body_of(data_diff={"relations": relations}), "Data diff (clone vs prod)")
        assert len([line for line in text.splitlines() if line.startswith("| `")]) == 15
        assert "… and 5 more relations" in text

    def test_no_relations(self) -> None:
        assert "No relation was compared." in body_of(data_diff={"relations": {}})


class TestLinks:
    def test_links_close_the_body(self) -> None:
        links = [
            ("This repair run", "http://airflow:8080/dags/selfheal_repair/runs/manual__1"),
            ("Evidence of this validation", "s3://bucket/selfheal/incidents/inc-1/proposals/x/abc"),
            ("Skipped", ""),
        ]
        body = body_of(links=links)
        tail = body.split("\n---\n", 1)[1].splitlines()
        assert tail == [
            tail[0],
            "- [This repair run](<http://airflow:8080/dags/selfheal_repair/runs/manual__1>)",
            "- Evidence of this validation: `s3://bucket/selfheal/incidents/inc-1/proposals/x/abc`",
        ]
        assert tail[0].startswith("Incident `inc-")
        assert tail[0].endswith("nothing reaches production before approval.")

    def test_no_links(self) -> None:
        body = body_of()
        assert body.endswith("nothing reaches production before approval.")
        assert "](" not in body

    def test_url_with_markup_is_not_a_link(self) -> None:
        body = body_of(links=[("run", "http://h/x> [y](javascript:alert(1))")])
        assert "- run: `http://h/x> [y](javascript:alert(1))`" in body


class TestHostileText:
    def test_values_cannot_break_the_structure(self) -> None:
        incident = make_incident(task_id="shop.`x`\n### injected", pipeline="p|q")
        triage = {
            "failure_class": "missing`_`column",
            "summary": "first line\n### Fake heading\n```\n| fake | table |",
            "root_cause": {"message": "a *bold* [link](http://evil) <b>html</b>"},
        }
        relations = {
            "ANALYTICS.X|Y": {
                "status": "error",
                "clone": {"row_count": 1},
                "prod": {"error": "bad | pipe\n`tick` and a\\|backslash"},
            }
        }
        data = proposal(
            rationale="Line one\n\n---\nline two",
            tier="auto**\n# x",
            data_diff={"relations": relations},
        )
        body = approval_body(incident, triage, data)
        assert re.findall(r"^### (.+)$", body, re.MULTILINE) == [
            "Diagnosis",
            "Diff",
            "Validation (in the clone)",
            "Data diff (clone vs prod)",
        ]
        assert body.count("\n---\n") == 1
        assert "(task ``shop.`x` ### injected``)" in body
        assert "``missing`_`column``" in body
        assert r"a \*bold\* \[link\](http://evil) \<b>html\</b>" in body
        row = next(line for line in body.splitlines() if line.startswith("| `ANALYTICS.X"))
        # Every pipe in the row is a cell border or escaped by a single backslash.
        unescaped = re.findall(r"(?<!\\)\|", row.replace("\\\\", ""))
        assert len(unescaped) == 5
        assert "a\\ \\|backslash" in row

    @pytest.mark.parametrize("key", ["incident_id", "pipeline", "task_id"])
    def test_missing_values_do_not_render_none(self, key: str) -> None:
        incident = copy.deepcopy(make_incident())
        incident.pop(key)
        body = approval_body(incident, {}, {})
        assert "None" not in body
        assert "nothing reaches production before approval." in body
