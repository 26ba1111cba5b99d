"""The drift page: the breaking source schema changes that a drift check found, in plain words."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_selfheal.core.pages.render import Page, format_lines

if TYPE_CHECKING:
    from airflow_selfheal.core.drift import DriftReport


def drift_page(
    baseline_name: str, report: DriftReport, baseline_version: str | None, *, pipeline: str
) -> Page:
    """
    The warning page for a drift report: the breaking changes in plain words, deduplicated by their set.

    Non-breaking changes (a widened column) are only counted in ``details``: they are noise to on-call.

    :param baseline_name: the baseline the report compares against, e.g. ``shop_raw``.
    :param report: the drift report.
    :param baseline_version: the accepted baseline's version, or None when there is none yet.
    :param pipeline: the DAG that ran the check.
    :return: the page, deduplicated by the baseline and the set of changes.
    """
    return Page(
        title=f"Source schema drift for {baseline_name}: {report.headline}",
        severity="warning",
        dedup_key=f"drift-{baseline_name}-{report.fingerprint or report.status}",
        sections=(("Changes", format_lines([event.message for event in report.breaking_events])),),
        details={
            "baseline": baseline_name,
            "baseline_version": baseline_version or "none",
            "pipeline": pipeline,
            "changes": len(report.breaking_events),
            "non_breaking_changes": len(report.non_breaking_events),
            "fingerprint": report.fingerprint,
        },
        group=pipeline,
        component=baseline_name,
    )
