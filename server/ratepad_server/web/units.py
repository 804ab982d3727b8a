"""A report's units and what its tables say of each: the next level down (child nodes or
windows) and the staff members, each with its figures, its shrunk ranking and its significance
badge (``reports.significance``: against the parent's funnel and its own previous period).
The report page, its CSV/XLSX export and the monthly PDF read them from here, so that the
three never disagree."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..org.models import Node
from ..reports import service as reports


@dataclass
class Units:
    parent: reports.Cell  # the scope's total
    kids: list[dict[str, Any]]  # child nodes or windows, each with "stats" and "verdict"
    staff: list[dict[str, Any]]  # staff members, likewise
    ranking: list[dict[str, Any]]  # the listed level (kids, else staff), best shrunk index first

    @property
    def listed(self) -> list[dict[str, Any]]:
        """The level the report lists: the children, else the staff members."""
        return self.kids or self.staff


def at_branch(node: Node) -> bool:
    """A node without children: its report lists windows and staff members."""
    return not Node.objects.filter(parent=node).exists()


def report_units(
    scope: reports.Scope, previous: reports.Span, *, staff_everywhere: bool = False
) -> Units:
    """The units of ``scope``'s report; ``previous`` is the 环比 span the "improved" badge
    compares with. Staff members are the drill-down's last level: listed at a branch or a
    window (``staff_everywhere``: at every level, as the export lists them), never for a
    report of one staff member."""
    parent = reports.total(scope)
    kids = reports.children(scope)
    wants_staff = staff_everywhere or at_branch(scope.node)
    staff = reports.staff_rows(scope) if wants_staff and scope.staff_id is None else []
    before = scope.shifted(*previous)
    kid_verdicts = reports.significance(
        kids, parent, {r["code"]: r["cell"] for r in reports.children(before)} if kids else {}
    )
    staff_verdicts = reports.significance(
        staff, parent, {r["code"]: r["cell"] for r in reports.staff_rows(before)} if staff else {}
    )

    def judged(rows: list[dict[str, Any]], verdicts: dict[str, Any]) -> list[dict[str, Any]]:
        """The rows in their order, each with its stats, shrunk figures and verdict."""
        ranked = {r["code"]: r for r in reports.ranking(rows, parent)}
        return [{**ranked[r["code"]], "verdict": verdicts[r["code"]]} for r in rows]

    kids, staff = judged(kids, kid_verdicts), judged(staff, staff_verdicts)
    ranking = sorted(kids or staff, key=lambda r: -r["shrunk_index"])  # as reports.ranking
    return Units(parent, kids, staff, ranking)
