"""Rollup increments of a batch of events: the counters of both rollups (``usage_daily``
and ``usage_daily_team_model``) summed per key in Python, exact (``Decimal``) until they are
converted for the driver, in each table's column order (``bulk.ROLLUP_ORDER``).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from services.gateway.binding import Binder

_ZERO = Decimal(0)


def fold(
    size: int, keys: Sequence[int], events: Sequence[Sequence[Any]], costs: Sequence[Any]
) -> list[list[Any]]:
    """The rollup counters (``storage.COUNTERS`` then cost) of ``events``, per key index.
    ``costs`` holds each event's cost when priced, else None (an unpriced request)."""
    totals: list[list[Any]] = [[0, 0, 0, 0, 0, 0, 0, 0, _ZERO] for _ in range(size)]
    for position, v, cost in zip(keys, events, costs, strict=True):
        t = totals[position]
        t[0] += 1
        if v[11] == "failure":
            t[1] += 1
        if v[13]:
            t[2] += 1
        t[3] += v[14]
        t[4] += v[15]
        t[5] += v[16]
        t[6] += v[17]
        if cost is None:
            t[7] += 1
        else:
            t[8] += cost
    return totals


def regroup(
    batch: Any, new: Sequence[int], binder: Binder
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """(daily, team_model) increments of a ``batches.PreparedBatch``'s events at positions
    ``new`` only, from its events, exact costs and rollup key positions."""
    keys = [batch.keys[i] for i in new]
    costs = [None if (c := batch.costs[i]) is None else Decimal(c) for i in new]
    totals = fold(len(batch.daily), keys, [batch.events[i] for i in new], costs)
    used = sorted(set(keys))
    return increments([batch.daily[k][:7] for k in used], [totals[k] for k in used], binder)


def increments(
    keys: Sequence[tuple[Any, ...]], totals: Sequence[list[Any]], binder: Binder
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Driver-ready rows of both rollups in their tables' column order (``bulk.ROLLUP_ORDER``);
    ``keys`` have their day already bound."""
    cost = binder.cost
    daily = []
    coarse: dict[tuple[Any, ...], list[Any]] = {}
    for key, t in zip(keys, totals, strict=True):
        daily.append((*key, t[0], t[1], t[2], t[3], t[4], t[5], t[6], cost(t[8]), t[7]))
        wide = (key[0], key[1], key[4], key[5])
        sums = coarse.get(wide)
        if sums is None:
            coarse[wide] = t
        else:
            sums[0] += t[0]
            sums[1] += t[1]
            sums[2] += t[2]
            sums[3] += t[3]
            sums[4] += t[4]
            sums[5] += t[5]
            sums[6] += t[6]
            sums[7] += t[7]
            sums[8] += t[8]
    team_model = [
        (*key, t[0], t[1], t[2], t[3], t[4], t[5], t[6], cost(t[8]), t[7])
        for key, t in coarse.items()
    ]
    return daily, team_model
