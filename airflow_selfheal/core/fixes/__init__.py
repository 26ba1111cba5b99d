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

Text from outside the project that a rule writes into a file (a column name or a type from a drift event, a
value from a failing row) must hold no Jinja delimiter (:func:`~airflow_selfheal.core.guards.assert_no_jinja`):
dbt renders Jinja in comments, quoted identifiers and string literals alike, so such text would run in
validation and again in production. A value that does makes the rule escalate, saying so. Every plan, a rule's
or another proposer's, must then pass :func:`plan_refusal`: its paths through the rules file's hard floor and
globs, and no file gaining Jinja delimiters (only ``source()``, ``ref()`` and ``config(severity=...)`` with
literal arguments may be added, as guard tests need).

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

The modules, each one concept; the engines never import the rules, and a rule never imports another rule:

- :mod:`.plan`: :class:`FixPlan` and :class:`Escalation`, :func:`plan_refusal`, and the draft, exception and
  outside-text check the rules use inside.
- :mod:`.propose`: :func:`propose_fix`, which rule a triage gets, and the rules-file policy on the result.
- :mod:`.context`: the fix context over the manifest, the sandbox files and the rules.
- :mod:`.jinja`: masking a file's Jinja for the parser, and macro calls that take a column by name.
- :mod:`.sql_parse`, :mod:`.sql_scope`, :mod:`.sql_edit`: parsing, column resolution, token-position edits.
- :mod:`.sql_names`, :mod:`.wording`: how names are compared and written, how messages are worded.
- :mod:`.yaml_edit`: minimal YAML edits checked against the loaded data.
- :mod:`.guard_tests`: the guard tests the plans add.
- :mod:`.rules`: one module per rule.

Importing the package loads no sqlglot: the modules import it inside the functions that need it.
"""

from __future__ import annotations

from airflow_selfheal.core.fixes.context import DEFAULT_TEST_PATH, GUARD_PREFIX
from airflow_selfheal.core.fixes.plan import Escalation, FixPlan, jinja_refusal, plan_refusal
from airflow_selfheal.core.fixes.propose import propose_fix
from airflow_selfheal.core.fixes.sql_parse import DIALECT

__all__ = [
    "DEFAULT_TEST_PATH",
    "DIALECT",
    "GUARD_PREFIX",
    "Escalation",
    "FixPlan",
    "jinja_refusal",
    "plan_refusal",
    "propose_fix",
]
