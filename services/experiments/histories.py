"""Metric histories (loss curves) of many MLflow runs at once, for the Experiments page.

Runs are read in chunks, one chunk and metric per request, several requests at a time: from a
tracking server (``http(s)://``) through the bulk endpoints MLflow's own UI uses, over one
pooled session; from a local store (``sqlite:``, ``postgresql:``, a folder) through MLflow's
store, in-process. A chunk comes whole from the raw bulk read (a third less work per point for
the server than the sampled one) and is thinned here; runs past its 25,000-point cap come
sampled by the server; a server or store without bulk reads is read run by run. A
process-wide cache makes a rerun of the page free for runs whose version marker is unchanged.
"""

from __future__ import annotations

import math
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from services.errors import ValidationError
from services.experiments.history_sources import (
    WHOLE_BULK_CAP,
    HistorySource,
    RawPoint,
    open_source,
)

RUNS_PER_REQUEST = 10  # both bulk endpoints take 100; small chunks spread over the workers
MAX_POINTS_LIMIT = 2500  # what the sampled bulk endpoint sends per run at most
CACHE_MAX_POINTS = 1_000_000  # about 100 MB of points kept between reruns

Item = TypeVar("Item")
Result = TypeVar("Result")


@dataclass(frozen=True)
class MetricSeries:
    """One metric of one run, ready to chart: finite values only, one per step (the last one
    logged), sorted by step. ``hidden_nan`` and ``hidden_inf`` count the values left out; for
    a run too long to be read whole, among the points the server sampled."""

    steps: tuple[int, ...] = ()
    values: tuple[float, ...] = ()
    timestamps_ms: tuple[int, ...] = ()
    hidden_nan: int = 0
    hidden_inf: int = 0

    def points(self) -> list[tuple[int, float, int]]:
        """(step, value, timestamp ms) of each point."""
        return list(zip(self.steps, self.values, self.timestamps_ms, strict=True))


@dataclass(frozen=True)
class MetricHistories:
    """What :func:`load_histories` found. ``missing_runs`` are the asked-for run ids the store
    does not know (never existed, or deleted for good), in the order asked, so that the page
    can say so. A run in MLflow's trash keeps its data and comes back like any other."""

    series: Mapping[tuple[str, str], MetricSeries] = field(default_factory=dict)
    missing_runs: tuple[str, ...] = ()

    def get(self, run_id: str, key: str) -> MetricSeries:
        """The series of ``key`` in ``run_id``; empty if the run never logged it."""
        return self.series.get((run_id, key), MetricSeries())

    def points(self, run_id: str, key: str) -> list[tuple[int, float, int]]:
        """(step, value, timestamp ms) of ``key`` in ``run_id``, sorted by step."""
        return self.get(run_id, key).points()


def load_histories(
    tracking_uri: str,
    run_ids: Sequence[str],
    keys: Sequence[str],
    *,
    max_points: int = 1000,
    timeout: float = 10.0,
    versions: Mapping[str, int] | None = None,
) -> MetricHistories:
    """Each metric in ``keys`` of each run in ``run_ids``, with at most ``max_points`` (2 to
    2,500) points per run and metric, evenly spaced, the first and the last always kept.

    ``versions`` maps run ids to a marker that changes whenever the run logs something (its
    end time once finished, else its latest metric timestamp). A run with a marker is served
    from a process-wide cache until the marker changes; a run without one is always read.
    ``timeout`` bounds each request to a server, in seconds.

    Raises ``ExternalServiceError`` naming the tracking URI when the store cannot be read."""
    if not 2 <= max_points <= MAX_POINTS_LIMIT:
        raise ValidationError(
            f"A line takes 2 to {MAX_POINTS_LIMIT:,} points.", fields={"max_points": "2–2500"}
        )
    runs, versions = list(dict.fromkeys(run_ids)), versions or {}
    found: dict[tuple[str, str], MetricSeries] = {}
    to_read: dict[str, list[str]] = {}  # metric key -> the runs whose series is not cached
    for key in dict.fromkeys(keys):
        for run_id in runs:
            cached = None
            if run_id in versions:
                cached = _cache.get((tracking_uri, run_id, key, max_points, versions[run_id]))
            if cached is None:
                to_read.setdefault(key, []).append(run_id)
            else:
                found[run_id, key] = cached
    if not to_read:
        return MetricHistories(found)

    source = open_source(tracking_uri, timeout)
    raw = _read(source, to_read, max_points)
    read_runs = {run_id for key_runs in to_read.values() for run_id in key_runs}
    silent = sorted(read_runs - {run_id for run_id, _ in raw})  # not one point in any metric
    known = _side_by_side(source.parallel_requests, source.exists, silent)
    missing = {run_id for run_id, exists in zip(silent, known, strict=True) if not exists}
    for key, key_runs in to_read.items():
        for run_id in key_runs:
            if run_id not in missing:
                series = to_series(raw.get((run_id, key), ()), max_points)
                found[run_id, key] = series
                if run_id in versions:
                    _cache.put((tracking_uri, run_id, key, max_points, versions[run_id]), series)
    return MetricHistories(found, tuple(run_id for run_id in runs if run_id in missing))


def to_series(points: Iterable[tuple[int, float, int]], max_points: int) -> MetricSeries:
    """Chartable points from raw (step, value, timestamp ms) ones: NaN and ±inf counted and
    left out, the last-logged value kept for a step logged twice, sorted by step, and thinned
    to ``max_points`` evenly spaced points that keep the first and the last."""
    latest: dict[int, tuple[int, float]] = {}  # step -> (timestamp, value)
    nan = inf = 0
    for step, value, timestamp in points:
        if math.isnan(value):
            nan += 1
        elif abs(value) >= sys.float_info.max:  # SQL stores keep ±inf as ±max float
            inf += 1
        elif step not in latest or (timestamp, value) >= latest[step]:
            latest[step] = (timestamp, value)
    steps = sorted(latest)
    if len(steps) > max_points:
        stride = (len(steps) - 1) / (max_points - 1)
        steps = [steps[round(i * stride)] for i in range(max_points)]
    return MetricSeries(
        steps=tuple(steps),
        values=tuple(latest[step][1] for step in steps),
        timestamps_ms=tuple(latest[step][0] for step in steps),
        hidden_nan=nan,
        hidden_inf=inf,
    )


def clear_cache() -> None:
    """Forget every cached series, so that the next load reads everything again."""
    _cache.clear()


def _read(
    source: HistorySource, to_read: Mapping[str, list[str]], max_points: int
) -> dict[tuple[str, str], list[tuple[int, float, int]]]:
    """The raw points of every (run, key) asked for: one job per key and chunk of runs."""
    jobs = [
        (key, key_runs[start : start + RUNS_PER_REQUEST])
        for key, key_runs in to_read.items()
        for start in range(0, len(key_runs), RUNS_PER_REQUEST)
    ]

    def read_chunk(job: tuple[str, list[str]]) -> tuple[str, list[RawPoint]]:
        key, run_ids = job
        points = source.whole(run_ids, key)
        if points is None:
            points, rest = [], run_ids
        elif len(points) < WHOLE_BULK_CAP:
            return key, points
        else:  # sorted by run id: the last run in it, and the runs after, may be cut short
            cut = points[-1][0]
            points, rest = [p for p in points if p[0] < cut], [r for r in run_ids if r >= cut]
        sampled = source.sampled(rest, key, max_points)
        if sampled is None:  # no bulk read here, or it refused a run it does not know
            sampled = [point for run_id in rest for point in source.full(run_id, key)]
        return key, points + sampled

    by_series: dict[tuple[str, str], list[tuple[int, float, int]]] = {}
    for key, points in _side_by_side(source.parallel_requests, read_chunk, jobs):
        for run_id, step, value, timestamp in points:
            by_series.setdefault((run_id, key), []).append((step, value, timestamp))
    return by_series


def _side_by_side(
    workers: int, work: Callable[[Item], Result], items: Sequence[Item]
) -> list[Result]:
    if len(items) < 2:
        return [work(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
        futures = [pool.submit(work, item) for item in items]
        try:
            return [future.result() for future in futures]
        except BaseException:  # a dead server fails once, not once per queued request
            for future in futures:
                future.cancel()
            raise


class SeriesCache:
    """The least recently used series, bounded by their total number of points."""

    def __init__(self, max_points: int) -> None:
        self.max_points = max_points
        self._entries: OrderedDict[tuple[Any, ...], MetricSeries] = OrderedDict()
        self._points = 0
        self._lock = threading.Lock()

    def get(self, key: tuple[Any, ...]) -> MetricSeries | None:
        with self._lock:
            series = self._entries.get(key)
            if series is not None:
                self._entries.move_to_end(key)
            return series

    def put(self, key: tuple[Any, ...], series: MetricSeries) -> None:
        with self._lock:
            if (replaced := self._entries.pop(key, None)) is not None:
                self._points -= len(replaced.steps) + 1
            self._entries[key] = series
            self._points += len(series.steps) + 1
            while self._points > self.max_points and len(self._entries) > 1:
                _, dropped = self._entries.popitem(last=False)
                self._points -= len(dropped.steps) + 1

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._points = 0


_cache = SeriesCache(CACHE_MAX_POINTS)
