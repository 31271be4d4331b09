"""Throughput of the order-book matching engine, against bare SimPy event throughput.

Run from the repository root::

    python -m benchmarks.bench_book            # 10**6 operations
    python -m benchmarks.bench_book --ops 100000

The stream is generated up front with a seeded ``np.random.Generator`` around a fixed mid price
``MID`` (ticks): 50% passive limit orders at ``MID -/+ 1..50`` ticks (buys below, sells above),
30% marketable limit orders priced ``51..100`` ticks through the mid so they cross every passive
level, 20% cancels of an order id drawn from the last ``CANCEL_WINDOW`` ids issued (sent by that
order's owner; ids already filled or cancelled are rejected by the book, as in real traffic).
Quantities are uniform on 1..100 base units, owners on 0..999. The book keeps growing, to hundreds
of orders per level, so the benchmark exercises deep queues.

The SimPy baseline is one process looping ``yield env.timeout(1)``; the ratio printed is engine
operations per second over SimPy timeouts per second, both measured in this run.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np
import simpy
from mktsim.mechanisms._book import OrderBook

__all__ = ["Timing", "make_stream", "run_single", "simpy_timeouts_per_second"]

MID = 100_000  # ticks
CANCEL_WINDOW = 1000  # cancels target one of the last this-many ids issued

PASSIVE, MARKETABLE, CANCEL = 0, 1, 2


def make_stream(n_ops: int, rng: np.random.Generator) -> list[tuple[int, tuple[Any, ...]]]:
    """Draw the operation stream.

    Args:
        n_ops: number of operations.
        rng: source of randomness.

    Returns:
        ``n_ops`` pairs ``(op, args)``: ``op`` is ``PASSIVE`` or ``MARKETABLE`` with
        ``args = (owner, side, qty, price)`` for ``OrderBook.limit``, or ``CANCEL`` with
        ``args = (owner, order_id)`` for ``OrderBook.cancel``.
    """
    op = rng.choice(3, size=n_ops, p=[0.5, 0.3, 0.2])
    is_buy = rng.integers(0, 2, size=n_ops).astype(bool)
    qty = rng.integers(1, 101, size=n_ops)
    offset = rng.integers(1, 51, size=n_ops)
    owner = rng.integers(0, 1000, size=n_ops)
    lag = rng.integers(0, CANCEL_WINDOW, size=n_ops)

    passive_price = np.where(is_buy, MID - offset, MID + offset)
    cross_price = np.where(is_buy, MID + 50 + offset, MID - 50 - offset)
    price = np.where(op == PASSIVE, passive_price, cross_price)

    # Every limit order in the stream is valid, so the book gives the k-th one id k (1-based).
    is_order = op != CANCEL
    ids_issued = np.cumsum(is_order)  # ids issued up to and including op i
    target = np.maximum(ids_issued - lag, 1)
    owner_by_id = np.concatenate(([0], owner[is_order]))  # owner_by_id[k] = owner of id k
    cancel_owner = owner_by_id[np.minimum(target, len(owner_by_id) - 1)]

    sides = np.where(is_buy, "buy", "sell").tolist()
    ops, owners, qtys, prices = op.tolist(), owner.tolist(), qty.tolist(), price.tolist()
    targets, cancel_owners = target.tolist(), cancel_owner.tolist()
    stream: list[tuple[int, tuple[Any, ...]]] = []
    for i, o in enumerate(ops):
        if o == CANCEL:
            if ids_issued[i] == 0:  # nothing issued yet: cancel an id that does not exist
                stream.append((o, (cancel_owners[i], 1)))
            else:
                stream.append((o, (cancel_owners[i], targets[i])))
        else:
            stream.append((o, (owners[i], sides[i], qtys[i], prices[i])))
    return stream


def _bind(book: OrderBook, stream: Sequence[tuple[int, tuple[Any, ...]]]) -> list[Any]:
    methods: list[Callable[..., Any]] = [book.limit, book.limit, book.cancel]
    return [(methods[op], args) for op, args in stream]


class Timing(NamedTuple):
    """Throughput of one timed run: per wall-clock second and per CPU second of this process
    (the latter is steadier on a machine shared with other jobs)."""

    wall: float
    cpu: float


def run_single(
    calls: Sequence[tuple[Callable[..., Any], tuple[Any, ...]]],
) -> Timing:
    """Feed the calls one by one through the single-order API; return operations per second."""
    w0, c0 = time.perf_counter(), time.process_time()
    for f, args in calls:
        f(*args)
    w1, c1 = time.perf_counter(), time.process_time()
    return Timing(len(calls) / (w1 - w0), len(calls) / (c1 - c0))


def simpy_timeouts_per_second(n_events: int) -> Timing:
    """Bare SimPy throughput: one process yielding ``env.timeout(1)`` ``n_events`` times."""

    def proc(env: simpy.Environment) -> Any:
        for _ in range(n_events):
            yield env.timeout(1)

    env = simpy.Environment()
    env.process(proc(env))
    w0, c0 = time.perf_counter(), time.process_time()
    env.run()
    w1, c1 = time.perf_counter(), time.process_time()
    return Timing(n_events / (w1 - w0), n_events / (c1 - c0))


def _outcomes(stream: Sequence[tuple[int, tuple[Any, ...]]]) -> dict[str, int]:
    """Replay the stream untimed and count what happened."""
    book = OrderBook("replay")
    calls = _bind(book, stream)
    n_fills = n_rejected_cancels = n_stp = 0
    for (op, _), (f, args) in zip(stream, calls, strict=True):
        r = f(*args)
        n_fills += len(r.fills)
        if op == CANCEL:
            n_rejected_cancels += r.status == "rejected"
        else:
            n_stp += len(r.cancelled)
    return {"fills": n_fills, "rejected cancels": n_rejected_cancels, "stp cancels": n_stp}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=1_000_000, help="operations (default 10**6)")
    parser.add_argument("--events", type=int, default=None, help="SimPy timeouts (default: ops)")
    parser.add_argument("--repeat", type=int, default=1, help="timed runs; the best is shown")
    parser.add_argument("--seed", type=int, default=20240611)
    parser.add_argument("--levels", type=int, default=5, help="depth levels to print per side")
    args = parser.parse_args(argv)
    n_events = args.ops if args.events is None else args.events

    stream = make_stream(args.ops, np.random.default_rng(args.seed))
    book_runs, simpy_runs = [], []
    for _ in range(args.repeat):  # interleaved, so both see the same machine load
        book = OrderBook("bench")
        calls = _bind(book, stream)
        book_runs.append(run_single(calls))
        del calls
        simpy_runs.append(simpy_timeouts_per_second(n_events))
    ops = Timing(max(t.wall for t in book_runs), max(t.cpu for t in book_runs))
    sim = Timing(max(t.wall for t in simpy_runs), max(t.cpu for t in simpy_runs))

    counts = np.bincount([op for op, _ in stream], minlength=3)
    outcomes = _outcomes(stream)
    all_levels = book.depth(10**9)
    n_levels = len(all_levels.bids) + len(all_levels.asks)
    n_bids, n_asks = len(book.orders("buy")), len(book.orders("sell"))
    depth = book.depth(args.levels)
    print(
        f"operations: {args.ops:,} (passive {counts[PASSIVE]:,}, marketable "
        f"{counts[MARKETABLE]:,}, cancel {counts[CANCEL]:,}), seed {args.seed}, "
        f"best of {args.repeat}"
    )
    print(", ".join(f"{k} {v:,}" for k, v in outcomes.items()))
    print(f"order book, single-order API: {ops.wall:>10,.0f} ops/s    ({ops.cpu:,.0f} per CPU s)")
    print(f"bare SimPy env.timeout(1):    {sim.wall:>10,.0f} events/s ({sim.cpu:,.0f} per CPU s)")
    print(
        f"ratio book ops / SimPy events: {ops.wall / sim.wall:.2f} (CPU: {ops.cpu / sim.cpu:.2f})"
    )
    print(
        f"final book: {n_bids:,} bids on {len(all_levels.bids)} levels, {n_asks:,} asks on "
        f"{len(all_levels.asks)} levels ({(n_bids + n_asks) / max(n_levels, 1):,.0f} orders per "
        f"level); last trade {book.last_price}"
    )
    print("  best bids (price, qty):", depth.bids)
    print("  best asks (price, qty):", depth.asks)


if __name__ == "__main__":
    main()
