"""Where a sweep's runs execute: a local process pool or a Dask cluster.

The local pool is built to outlive its workers and not to outlive the sweep:

* **A worker dies** (killed, out of memory): a process pool then breaks, and every run it had not
  finished fails with it, including runs no worker had started. Instead, the runs that never
  started go to a fresh pool as if nothing happened, and each run that was executing when the
  pool broke runs again, alone on a pool of one worker: if that worker dies too, the run is what
  kills it and is recorded as failed. Workers mark each run as they start it (an empty file in a
  private temporary folder), which is how the sweep tells started runs from queued ones.
* **The sweep dies** (even by SIGKILL, which runs no clean-up): every worker watches the sweep's
  process and exits when it ends, so no pool outlives it; the fork server exits by itself when
  its parent does.

Both executors call ``write(spec, outcome)`` in the sweep's process as each run finishes, and
``failure(spec, exc)`` makes the outcome of a run that failed outside its own code.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

from mktsim.errors import MktsimError

__all__ = ["dask_client", "run_on_dask", "run_on_pool"]

#: How long a sweep waits for a Dask scheduler before it says it cannot reach it.
DASK_CONNECT_SECONDS = 5

# One BLAS thread per worker: the pool already runs a process per core, and numpy's threaded
# BLAS on top of it oversubscribes the cores (measured: 2 workers ran 200,000-agent runs at half
# the speed of 1). Set while the fork server and the workers start; a value the user set is kept.
_BLAS_THREADS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")

Execute = Callable[..., Any]
Write = Callable[[Any, Any], None]
Failure = Callable[[Any, BaseException], Any]


def run_on_pool(
    todo: list[Any],
    n: int,
    execute: Execute,
    args: tuple[Any, ...],
    write: Write,
    failure: Failure,
    preload: list[str],
) -> None:
    """Run ``execute(spec, *args)`` for every spec on ``n`` local processes (see the module doc).

    ``execute`` must be importable by the workers (a module-level function) and must not raise
    for a failing run; ``preload`` names modules the fork server imports once for all workers.
    """
    saved = {k: os.environ.get(k) for k in _BLAS_THREADS}
    os.environ.update({k: "1" for k, v in saved.items() if v is None})
    marks = Path(tempfile.mkdtemp(prefix="mktsim-sweep-"))
    pool = partial(
        _one_pool,
        execute=execute,
        args=args,
        write=write,
        failure=failure,
        preload=preload,
        marks=marks,
    )
    try:
        queue = list(todo)
        while queue:
            left, started, broken = pool(queue, n)
            if broken is not None and not started:  # the pool cannot start a run at all
                for spec in left:
                    write(spec, failure(spec, broken))
                return
            # Each run that was executing when the pool broke runs again alone: if its worker
            # dies again, it is the run that kills it.
            for spec in (s for s in left if s.run_id in started):
                again, _, second = pool([spec], 1)
                if again and second is not None:
                    write(spec, failure(spec, second))
            queue = [s for s in left if s.run_id not in started]
    finally:
        shutil.rmtree(marks, ignore_errors=True)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)


def _one_pool(
    queue: list[Any],
    n: int,
    *,
    execute: Execute,
    args: tuple[Any, ...],
    write: Write,
    failure: Failure,
    preload: list[str],
    marks: Path,
) -> tuple[list[Any], set[str], BaseException | None]:
    """Run the queue on one pool of ``n`` workers until it finishes or breaks.

    Returns the runs not finished, the ids of those among them that had started, and the
    error that broke the pool (None if it did not break).
    """
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    folder = Path(tempfile.mkdtemp(dir=marks))  # this pool's marks only
    finished: set[str] = set()
    broken: BaseException | None = None
    with ProcessPoolExecutor(
        min(n, len(queue)),
        mp_context=_context(preload),
        initializer=_exit_with,
        initargs=(os.getpid(),),
    ) as pool:
        pending = {
            pool.submit(_marked, execute, str(folder / s.run_id), s, *args): s for s in queue
        }
        try:
            for future in as_completed(pending):
                spec = pending[future]
                try:
                    outcome = future.result()
                except BrokenProcessPool as exc:
                    broken = exc
                    continue
                except Exception as exc:  # could not pickle the run or its outcome
                    outcome = failure(spec, exc)
                finished.add(spec.run_id)
                write(spec, outcome)
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    left = [s for s in queue if s.run_id not in finished]
    started = {s.run_id for s in left if (folder / s.run_id).exists()}
    return left, started, broken


def _context(preload: list[str]) -> Any:
    import multiprocessing

    # Not fork: a forked child would inherit the sweep's lock and any threads of the caller.
    # A fork server is a clean process that imports mktsim once and forks each worker from it
    # (spawn, where there is none, makes every worker import numpy, pandas and scipy again).
    if "forkserver" in multiprocessing.get_all_start_methods():
        multiprocessing.set_forkserver_preload(preload)
        return multiprocessing.get_context("forkserver")
    return multiprocessing.get_context("spawn")


def _marked(execute: Execute, mark: str, spec: Any, *args: Any) -> Any:
    """In a worker: mark the run as started, then run it."""
    Path(mark).touch()
    return execute(spec, *args)


def _exit_with(sweep_pid: int) -> None:
    """In a worker, at its start: exit as soon as the sweep's process ends.

    A pool's workers otherwise block forever on a queue that nobody will write to again once the
    sweep is killed. Linux gives a descriptor that becomes readable when the process ends
    (``pidfd_open``); elsewhere the worker checks once a second.
    """

    def watch() -> None:
        try:
            fd = os.pidfd_open(sweep_pid)
        except (AttributeError, OSError):
            fd = None
        if fd is not None:
            select.select([fd], [], [])
        else:
            while _alive(sweep_pid):
                threading.Event().wait(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="mktsim-sweep-watch", daemon=True).start()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def dask_client(scheduler: Any) -> Iterator[Any]:
    """A client of the cluster (an address is connected to here, within
    :data:`DASK_CONNECT_SECONDS`, and closed after)."""
    try:
        import distributed
    except ImportError as exc:
        raise MktsimError(
            "running on a Dask scheduler needs dask.distributed: pip install 'mktsim[dist]'"
        ) from exc
    if isinstance(scheduler, distributed.Client):
        yield scheduler
        return
    from distributed.comm.addressing import parse_address, parse_host_port

    try:  # a malformed address is refused before a client exists (a half-made one hangs at exit)
        scheme, location = parse_address(scheduler)
        if scheme in ("tcp", "tls", "ws", "wss"):
            parse_host_port(location)
    except (ValueError, TypeError) as exc:
        raise MktsimError(f"cannot reach the Dask scheduler at {scheduler!r}: {exc}") from exc
    try:
        client = distributed.Client(
            scheduler, set_as_default=False, timeout=f"{DASK_CONNECT_SECONDS}s"
        )
    except (OSError, TimeoutError, ValueError, TypeError) as exc:
        raise MktsimError(f"cannot reach the Dask scheduler at {scheduler!r}: {exc}") from exc
    try:
        yield client
    finally:
        client.close()


def run_on_dask(
    todo: list[Any],
    client: Any,
    execute: Execute,
    args: tuple[Any, ...],
    write: Write,
    failure: Failure,
) -> None:
    """Run ``execute(spec, *args)`` for every spec on the cluster; a run whose worker dies is
    the cluster's to retry (its ``allowed-failures``), then recorded as failed."""
    import distributed

    tag = uuid.uuid4().hex[:8]  # a fresh key per sweep: a cluster caches results by key
    pending: dict[Any, Any] = {}
    try:
        for spec in todo:
            key = f"mktsim-run-{spec.run_id}-{tag}"
            pending[client.submit(execute, spec, *args, key=key, pure=False)] = spec
        for future in distributed.as_completed(list(pending), loop=client.loop):
            spec = pending.pop(future)
            try:
                outcome = future.result()
            except Exception as exc:  # e.g. KilledWorker: record it and go on
                outcome = failure(spec, exc)
            write(spec, outcome)
            future.release()
    finally:
        if pending:
            client.cancel(list(pending))
