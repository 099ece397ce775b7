"""Loss curves of many runs against a real ``mlflow server`` (loopback, SQLite store, 4 workers):
the naive loop of ``MlflowClient.get_metric_history`` per run and metric beside
``load_histories`` cold and warm, the same load from the SQLite file in-process, and
``search_runs`` paging through 5,000 runs. All measured in this one run, with the server's CPU
time beside the wall time: the server's work per point is what bounds a cold load.

    python -m benchmarks.metric_histories [--runs 100] [--metrics 5] [--steps 1000]
        [--naive-runs 50] [--light-runs 5000]

Seeding: one run of each shape is logged through ``MlflowClient.log_batch`` (1,000 metrics a
call) into the SQLite file before the server starts; its rows are then copied for the other
runs with one ``INSERT … SELECT`` per table of MLflow's schema (new run id, name, and an offset
on the values). Logging every point through ``log_batch`` takes over a minute on 2 cores.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from benchmarks import figures as benchmark_figures
from benchmarks.figures import Figure
from services.config import Settings, apply_process_defaults
from tests.integration.experiments.conftest import running_mlflow_server

Timing = tuple[float, float, float]  # seconds: wall, this process's CPU, the server's CPU


def log_template(client: Any, experiment_id: str, metrics: dict[str, list[float]]) -> str:
    """One run logged the way a training job logs it, through log_batch."""
    from mlflow.entities import Metric, Param

    run_id: str = client.create_run(experiment_id, run_name="template").info.run_id
    points = [
        Metric(key, value, 1_700_000_000_000 + step, step)
        for key, values in metrics.items()
        for step, value in enumerate(values)
    ]
    client.log_batch(run_id, params=[Param("lr", "1e-4"), Param("rank", "8")])
    for start in range(0, len(points), 1000):
        client.log_batch(run_id, metrics=points[start : start + 1000])
    client.set_terminated(run_id)
    return run_id


def copy_run(db_uri: str, template_id: str, copies: int, prefix: str) -> list[str]:
    """``copies`` runs whose rows are the template's, each with its own id, name and offset."""
    from mlflow.store.tracking.dbmodels import models

    new_ids = [uuid.uuid4().hex for _ in range(copies)]
    clones = sa.Table(
        "bench_clones",
        sa.MetaData(),
        sa.Column("run_id", sa.String(32)),
        sa.Column("name", sa.String(250)),
        sa.Column("offset", sa.Float),
        prefixes=["TEMPORARY"],
    )
    tables = [model.__table__ for model in (models.SqlRun, models.SqlTag, models.SqlParam,
                                            models.SqlMetric, models.SqlLatestMetric)]  # fmt: skip
    engine = sa.create_engine(db_uri)
    with engine.begin() as conn:
        clones.create(conn)
        conn.execute(
            clones.insert(),
            [
                {"run_id": r, "name": f"{prefix}-{i}", "offset": i / 100}
                for i, r in enumerate(new_ids)
            ],
        )
        for table in tables:
            picked = [_copied(table, column, template_id, clones) for column in table.columns]
            rows = sa.select(*picked).select_from(table.join(clones, sa.true()))
            rows = rows.where(table.c.run_uuid == template_id)
            conn.execute(sa.insert(table).from_select([c.name for c in table.columns], rows))
    engine.dispose()
    return new_ids


def _copied(table: sa.Table, column: Any, template_id: str, clones: sa.Table) -> Any:
    """The column as a copy gets it: the clone's id, name and offset where they belong."""
    if column.name == "run_uuid":
        return clones.c.run_id.label("run_uuid")
    if table.name == "runs" and column.name == "name":
        return clones.c.name.label("name")
    if table.name == "runs" and column.name == "artifact_uri":
        return sa.func.replace(column, template_id, clones.c.run_id).label("artifact_uri")
    if table.name == "tags" and column.name == "value":
        renamed = sa.case((table.c.key == "mlflow.runName", clones.c.name), else_=column)
        return renamed.label("value")
    if table.name in ("metrics", "latest_metrics") and column.name == "value":
        return (column + clones.c.offset).label("value")
    return column


def server_cpu_seconds(port: int) -> float:
    """User + system CPU time of the server on ``port`` and its workers (its process group)."""
    by_group: dict[str, float] = {}
    server_group = None
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        ticks = int(fields[11]) + int(fields[12])
        by_group[fields[2]] = by_group.get(fields[2], 0.0) + ticks / os.sysconf("SC_CLK_TCK")
        if b"mlflow\x00server" in cmdline and f"--port\x00{port}\x00".encode() in cmdline:
            server_group = fields[2]
    assert server_group is not None, f"no mlflow server on port {port}"
    return by_group[server_group]


def timed(work: Callable[[], object], port: int) -> Timing:
    server_before, client_before = server_cpu_seconds(port), time.process_time()
    started = time.perf_counter()
    work()
    wall = time.perf_counter() - started
    return wall, time.process_time() - client_before, server_cpu_seconds(port) - server_before


def seed(folder: Path, args: argparse.Namespace, keys: list[str]) -> tuple[list[str], str]:
    """The curves' run ids, and the id of the experiment holding the light runs."""
    from mlflow.tracking import MlflowClient

    db_uri = f"sqlite:///{folder / 'mlflow.db'}"
    started = time.perf_counter()
    client = MlflowClient(db_uri)
    curves = client.create_experiment("curves", artifact_location=(folder / "a").as_uri())
    shapes = {
        k: [math.exp(-s / (300 + 50 * i)) for s in range(args.steps)] for i, k in enumerate(keys)
    }
    logging_started = time.perf_counter()
    template = log_template(client, curves, shapes)
    per_thousand = (time.perf_counter() - logging_started) * 1000 / (len(keys) * args.steps)
    run_ids = [template, *copy_run(db_uri, template, args.runs - 1, "curve")]
    sweep = client.create_experiment("sweep", artifact_location=(folder / "b").as_uri())
    finals = {"eval_loss": [0.9], "accuracy": [0.7], "train_tokens": [1e6]}
    copy_run(db_uri, log_template(client, sweep, finals), args.light_runs - 1, "sweep")
    print(
        f"Seeded {args.runs} runs x {len(keys)} metrics x {args.steps} steps and "
        f"{args.light_runs:,} light runs in {time.perf_counter() - started:.1f} s "
        f"(log_batch here: {per_thousand:.2f} s per 1,000 metrics)"
    )
    return run_ids, sweep


def measure(
    url: str, db_uri: str, run_ids: list[str], keys: list[str], sweep: str, args: argparse.Namespace
) -> dict[str, Timing]:
    from mlflow.tracking import MlflowClient

    from services.experiments.histories import clear_cache, load_histories

    port = int(url.rsplit(":", 1)[1])
    client = MlflowClient(url)
    client.get_metric_history(run_ids[-1], keys[0])  # the server's first request pays imports
    naive_runs = run_ids[: args.naive_runs]
    figures = {
        "naive": timed(
            lambda: [client.get_metric_history(r, k) for r in naive_runs for k in keys], port
        )
    }
    clear_cache()
    versions = dict.fromkeys(run_ids, 1)
    loaded = []
    figures["cold"] = timed(
        lambda: loaded.append(load_histories(url, run_ids, keys, versions=versions)), port
    )
    assert all(len(loaded[0].get(r, k).steps) == args.steps for r in run_ids for k in keys)
    warm = [
        timed(lambda: load_histories(url, run_ids, keys, versions=versions), port) for _ in range(5)
    ]
    wall, client_cpu, server_cpu = (statistics.median(sample) for sample in zip(*warm, strict=True))
    figures["warm"] = (wall, client_cpu, server_cpu)
    clear_cache()
    figures["in_process"] = timed(lambda: load_histories(db_uri, run_ids, keys), port)

    def every_sweep_run() -> None:
        page = client.search_runs([sweep], max_results=1000)
        fetched = len(page)
        while page.token:
            page = client.search_runs([sweep], max_results=1000, page_token=page.token)
            fetched += len(page)
        assert fetched == args.light_runs, fetched

    figures["search"] = timed(every_sweep_run, port)
    return figures


def report(figures: dict[str, Timing], args: argparse.Namespace) -> None:
    scale = args.runs / args.naive_runs
    size = f"{args.runs} runs x {args.metrics}"
    rows = [
        (
            f"naive get_metric_history, {args.naive_runs} runs x {args.metrics} (measured)",
            "naive",
            1.0,
        ),
        (f"naive, scaled to {size}", "naive", scale),
        (f"load_histories cold, {size}", "cold", 1.0),
        ("load_histories warm (cache hit, median of 5)", "warm", 1.0),
        ("load_histories from the SQLite file in-process, cold", "in_process", 1.0),
        (f"search_runs: all {args.light_runs:,} runs, pages of 1,000", "search", 1.0),
    ]
    print(f"\n{'measure':<60} {'wall s':>7} {'client CPU s':>12} {'server CPU s':>12}")
    for label, name, factor in rows:
        wall, client_cpu, server_cpu = (seconds * factor for seconds in figures[name])
        print(f"{label:<60} {wall:7.2f} {client_cpu:12.2f} {server_cpu:12.2f}")
    naive, cold, warm = figures["naive"][0] * scale, figures["cold"][0], figures["warm"][0]
    per_history = {name: figures[name][2] * 1000 / (args.runs * args.metrics) for name in figures}
    print(
        f"\nnaive / cold {naive / cold:.1f}x, naive / warm {naive / warm:,.0f}x. Server CPU per "
        f"history of {args.steps:,} points: naive {per_history['naive'] * scale:.0f} ms, "
        f"cold {per_history['cold']:.0f} ms."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--metrics", type=int, default=5)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--naive-runs", type=int, default=50, help="runs the naive loop reads")
    parser.add_argument("--light-runs", type=int, default=5000)
    args = parser.parse_args()
    apply_process_defaults(Settings())  # no MLflow telemetry, here or from the server
    keys = [f"metric_{k}" for k in range(args.metrics)]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        run_ids, sweep = seed(folder, args, keys)
        with running_mlflow_server(folder, workers=4) as url:
            figures = measure(url, f"sqlite:///{folder / 'mlflow.db'}", run_ids, keys, sweep, args)
    report(figures, args)
    naive, cold = figures["naive"][0] * args.runs / args.naive_runs, figures["cold"][0]
    size = f"{args.runs} runs x {args.metrics} metrics x {args.steps:,} steps"
    benchmark_figures.report(
        "metric_histories",
        [
            Figure(
                f"load_histories cold, {size}",
                cold,
                "s",
                "< 2 s",
                cold < 2,
                f"{naive / cold:.1f}x faster than the naive loop",
            ),
            Figure(
                "naive loop / load_histories cold", naive / cold, "x", ">= 5x", naive / cold >= 5
            ),
            Figure("naive get_metric_history loop (scaled)", naive, "s"),
            Figure("load_histories warm (cache hit)", figures["warm"][0], "s"),
            Figure("load_histories from the SQLite file in-process", figures["in_process"][0], "s"),
            Figure(f"search_runs, all {args.light_runs:,} runs", figures["search"][0], "s"),
            Figure("server CPU, load_histories cold", figures["cold"][2], "s"),
        ],
    )


if __name__ == "__main__":
    main()
