"""Preparing a file's batches in a forked worker process while this one stores them.

Parsing (``orjson``, field extraction, pricing, summing) and storing (SQLite's B-trees) each
take about half of an ingest's CPU time, so on two or more cores they overlap: the worker
reads and prepares batch n + 1 while the parent stores batch n. Batches come back pickled
through a pipe, which holds at most one in flight, so memory stays bounded. The worker is
forked (its parser, price book and file opener are inherited, not pickled) and only reads
the file: every database write stays in the parent, so each batch is still committed with
its progress in the ledger, in order. Any error in the worker is raised again in the parent;
if the parent stops (an error, an interrupt), the worker is ended.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import pickle
import threading
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection
from typing import Any

from services.gateway.batches import PreparedBatch

MIN_PARALLEL_BYTES = 8 << 20
"""Files smaller than this are prepared in the ingesting process (a fork costs more)."""


def worker_count(gzipped: bool) -> int:
    """How many worker processes to prepare a file's batches in: 0 (in this process) where
    there is no ``fork``, one core, or other threads (a web server: a fork copies the locks
    they hold); 1 for a gzip file (each worker reads the whole file, and inflating it twice
    costs more than it saves); else 2 (they take turns by chunk of lines, and with the
    storing process make up the work of about two cores)."""
    if (
        "fork" not in multiprocessing.get_all_start_methods()
        or (os.cpu_count() or 1) < 2
        or multiprocessing.current_process().daemon  # may not have children
        or threading.active_count() > 1
    ):
        return 0
    return 1 if gzipped else 2


@contextmanager
def paused_gc() -> Iterator[None]:
    """The cyclic garbage collector paused while a file is ingested: batches form no cycles,
    and the collections their many small objects set off would only scan them again."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def in_workers(
    produce: Callable[[int, int], Iterator[PreparedBatch]], workers: int
) -> Generator[PreparedBatch]:
    """The batches that ``produce(worker, workers)`` yield in ``workers`` forked processes,
    taken in turn (chunk ``c`` from worker ``c % workers``) up to the first ``last`` one."""
    context = multiprocessing.get_context("fork")
    receivers, processes = [], []
    try:
        for worker in range(workers):
            receiver, sender = context.Pipe(duplex=False)
            process = context.Process(
                target=_work, args=(lambda w=worker: produce(w, workers), sender), daemon=True
            )
            process.start()
            sender.close()
            receivers.append(receiver)
            processes.append(process)
        chunk = 0
        while True:
            message = _receive(receivers[chunk % workers], processes[chunk % workers])
            yield message
            if message.last:
                return
            chunk += 1
    finally:
        for receiver in receivers:
            receiver.close()
        for process in processes:
            if process.is_alive():
                process.terminate()
            process.join()


def _receive(receiver: Connection, process: Any) -> PreparedBatch:
    try:
        message = pickle.loads(receiver.recv_bytes())  # noqa: S301 (our own fork wrote it)
    except EOFError:
        raise RuntimeError(
            f"an ingest worker process ended unexpectedly (exit code {process.exitcode})"
        ) from None
    if isinstance(message, BaseException):
        raise message
    assert isinstance(message, PreparedBatch)
    return message


def _work(produce: Callable[[], Iterator[PreparedBatch]], sender: Connection) -> None:
    code = 0
    gc.disable()  # nothing it makes forms a cycle; collections would only rescan the batch
    try:
        for batch in produce():
            sender.send_bytes(pickle.dumps(batch, protocol=pickle.HIGHEST_PROTOCOL))
    except BrokenPipeError:
        code = 1  # the parent stopped reading
    except BaseException as exc:  # handed to the parent, which raises it
        try:
            sender.send_bytes(pickle.dumps(exc, protocol=pickle.HIGHEST_PROTOCOL))
        except Exception:  # an exception that cannot be pickled
            sender.send_bytes(pickle.dumps(RuntimeError(repr(exc))))
        code = 1
    finally:
        sender.close()
        os._exit(code)  # skip the parent's exit handlers, inherited by the fork
