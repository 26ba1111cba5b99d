"""Oracles: facts about the marts computed in Python from the generated raw rows, apart from the SQL models.

An oracle is a query on a project's marts and a function of the raw rows that says what the query must return.
The expected side never reads a model: it applies the business rules (the shop's returns, the bike share's
false starts and tariff) to the rows the loader generated, so a model that double counts, drops rows or loses
cents makes its oracle fail. Each scenario says which oracle values hold after a correct outcome
(``Scenario.oracles_after``); today every scenario expects the ``clean`` values, those of the rows as loaded:
a repair must restore exactly what an untouched pipeline reports (a dedup removes the re-delivered copies, a
rename or a cast reads the same values), and an escalation leaves production as the last good build left it.

.. code-block:: python

    from dev.projects import PROJECTS

    rides = PROJECTS["rides"]
    with warehouse.connect(database=rides.database) as conn:
        mismatches = check_oracles(conn, rides.oracles, rides.rows(), marts=rides.marts)
    assert not mismatches
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from dev.loader import MIN_TRIP_SECONDS, RIDES_RAW, SHOP_RAW

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence


CENT = Decimal("0.01")
RETURNED_STATUSES = ("returned", "return_pending")


@dataclass(frozen=True)
class Oracle:
    """A query on the marts and what it must return for given raw rows.

    :param name: a stable key, e.g. ``finance_total_revenue``.
    :param description: the fact, in one sentence.
    :param sql: the query; ``{marts}`` stands for ``DATABASE.SCHEMA`` of the project's models.
    :param expected: the raw rows (``RawLayout`` column order per table) -> the rows the query returns, as a
        list of tuples.
    """

    name: str
    description: str
    sql: str
    expected: Callable[[Mapping[str, list[tuple[Any, ...]]]], list[tuple[Any, ...]]]

    def query(self, marts: str) -> str:
        """The query for the models in ``marts`` (``DATABASE.SCHEMA``)."""
        return self.sql.format(marts=marts)


@dataclass(frozen=True)
class OracleMismatch:
    """An oracle whose query did not return its expected rows."""

    name: str
    expected: list[tuple[Any, ...]]
    actual: list[tuple[Any, ...]]

    def __str__(self) -> str:
        return f"oracle {self.name}: expected {self.expected}, the marts say {self.actual}"


def _normalised(rows: Sequence[Sequence[Any]]) -> list[tuple[Any, ...]]:
    # The connector returns Decimal for NUMBER with a scale and int for NUMBER(38,0); a float would mean a sum
    # escaped its cast, which the comparison should report rather than paper over.
    return [tuple(row) for row in rows]


def expected_values(oracles: Sequence[Oracle], rows: Mapping[str, list[tuple[Any, ...]]]) -> dict[str, Any]:
    """Every oracle's expected rows for ``rows``, by oracle name."""
    return {oracle.name: oracle.expected(rows) for oracle in oracles}


def check_oracles(
    conn: Any, oracles: Sequence[Oracle], rows: Mapping[str, list[tuple[Any, ...]]], *, marts: str
) -> list[OracleMismatch]:
    """Run each oracle's query on ``marts`` and return the ones that disagree with ``rows`` (empty: all agree)."""
    cursor = conn.cursor()
    mismatches = []
    for oracle in oracles:
        expected = oracle.expected(rows)
        actual = _normalised(cursor.execute(oracle.query(marts)).fetchall())
        if actual != expected:
            mismatches.append(OracleMismatch(oracle.name, expected, actual))
    return mismatches


# ---------------------------------------------------------------------------------------------------------------
# The bike share
# ---------------------------------------------------------------------------------------------------------------


def _real_trips(rows: Mapping[str, list[tuple[Any, ...]]]) -> dict[int, dict[str, Any]]:
    """Trips by id that are not false starts; a re-delivered copy of a trip is the same trip."""
    trips = {}
    for trip in RIDES_RAW.records(rows, "TRIPS"):
        if (trip["ENDED_AT"] - trip["STARTED_AT"]).total_seconds() >= MIN_TRIP_SECONDS:
            trips[trip["TRIP_ID"]] = trip
    return trips


def _cents_by_trip(rows: Mapping[str, list[tuple[Any, ...]]]) -> dict[int, int]:
    cents: dict[int, int] = defaultdict(int)
    for charge in RIDES_RAW.records(rows, "TRIP_CHARGES"):
        if charge["TRIP_ID"] is not None:
            cents[charge["TRIP_ID"]] += int(charge["AMOUNT_CENTS"])
    return cents


def _currency(cents: int) -> Decimal:
    return (Decimal(cents) / 100).quantize(CENT)


def _rides_total_revenue(rows: Mapping[str, list[tuple[Any, ...]]]) -> list[tuple[Any, ...]]:
    trips, cents = _real_trips(rows), _cents_by_trip(rows)
    return [(_currency(sum(cents.get(trip_id, 0) for trip_id in trips)),)]


def _rides_trip_count(rows: Mapping[str, list[tuple[Any, ...]]]) -> list[tuple[Any, ...]]:
    return [(len(_real_trips(rows)),)]


def _rides_active_members(rows: Mapping[str, list[tuple[Any, ...]]]) -> list[tuple[Any, ...]]:
    return [(len({trip["MEMBER_ID"] for trip in _real_trips(rows).values()}),)]


def _rides_revenue_by_plan(rows: Mapping[str, list[tuple[Any, ...]]]) -> list[tuple[Any, ...]]:
    plan_of = {
        member["MEMBER_ID"]: member["PLAN_CODE"].lower() for member in RIDES_RAW.records(rows, "MEMBERS")
    }
    cents = _cents_by_trip(rows)
    riders: dict[str, set[int]] = defaultdict(set)
    trip_count: dict[str, int] = defaultdict(int)
    revenue: dict[str, int] = defaultdict(int)
    for trip_id, trip in _real_trips(rows).items():
        plan = plan_of[trip["MEMBER_ID"]]
        riders[plan].add(trip["MEMBER_ID"])
        trip_count[plan] += 1
        revenue[plan] += cents.get(trip_id, 0)
    return [(plan, len(riders[plan]), trip_count[plan], _currency(revenue[plan])) for plan in sorted(riders)]


RIDES_ORACLES: tuple[Oracle, ...] = (
    Oracle(
        "finance_total_revenue",
        "Revenue over all days is what the real trips were charged, to the cent.",
        "select cast(coalesce(sum(revenue), 0) as number(18, 2)) from {marts}.FCT_DAILY_REVENUE",
        _rides_total_revenue,
    ),
    Oracle(
        "core_trip_count",
        "One fact row per real trip: false starts are not trips, a re-delivered trip counts once.",
        "select count(*) from {marts}.FCT_TRIPS",
        _rides_trip_count,
    ),
    Oracle(
        "core_active_members",
        "Active members are those with at least one real trip.",
        "select count(*) from {marts}.DIM_MEMBERS where is_active",
        _rides_active_members,
    ),
    Oracle(
        "finance_revenue_by_plan",
        "Riding members, real trips and revenue per subscription plan.",
        "select plan, riding_members, trip_count, revenue from {marts}.FCT_REVENUE_BY_PLAN order by plan",
        _rides_revenue_by_plan,
    ),
)


# ---------------------------------------------------------------------------------------------------------------
# The demo shop
# ---------------------------------------------------------------------------------------------------------------


def _shop_orders(rows: Mapping[str, list[tuple[Any, ...]]]) -> dict[int, dict[str, Any]]:
    return {order["ORDER_ID"]: order for order in SHOP_RAW.records(rows, "ORDERS")}


def _shop_revenue(rows: Mapping[str, list[tuple[Any, ...]]]) -> list[tuple[Any, ...]]:
    orders = _shop_orders(rows)
    kept = {
        order_id for order_id, order in orders.items() if order["STATUS"].lower() not in RETURNED_STATUSES
    }
    paid = sum(
        (payment["AMOUNT"] for payment in SHOP_RAW.records(rows, "PAYMENTS") if payment["ORDER_ID"] in kept),
        Decimal("0"),
    )
    return [(paid.quantize(CENT),)]


def _shop_order_count(rows: Mapping[str, list[tuple[Any, ...]]]) -> list[tuple[Any, ...]]:
    return [(len(_shop_orders(rows)),)]


def _shop_customers_with_orders(rows: Mapping[str, list[tuple[Any, ...]]]) -> list[tuple[Any, ...]]:
    return [(len({order["CUSTOMER_ID"] for order in _shop_orders(rows).values()}),)]


SHOP_ORACLES: tuple[Oracle, ...] = (
    Oracle(
        "finance_total_revenue",
        "Revenue over all days is what was paid for orders that were not returned.",
        "select cast(coalesce(sum(revenue), 0) as number(14, 2)) from {marts}.FCT_DAILY_REVENUE",
        _shop_revenue,
    ),
    Oracle(
        "core_order_count",
        "One fact row per order; a re-delivered order counts once.",
        "select count(*) from {marts}.FCT_ORDERS",
        _shop_order_count,
    ),
    Oracle(
        "core_customers_with_orders",
        "Customers with at least one order.",
        "select count(*) from {marts}.DIM_CUSTOMERS where number_of_orders > 0",
        _shop_customers_with_orders,
    ),
)
