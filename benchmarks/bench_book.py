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
from typing import Any

import numpy as np
import simpy

from mechanisms._book import OrderBook

__all__ = ["make_stream", "simpy_timeouts_per_second"]

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


def run_single(book: OrderBook, calls: Sequence[tuple[Callable[..., Any], tuple[Any, ...]]]) -> float:
    """Feed the calls one by one through the single-order API; return elapsed seconds."""
    t0 = time.perf_counter()
    for f, args in calls:
        f(*args)
    return time.perf_counter() - t0


def simpy_timeouts_per_second(n_events: int) -> float:
    """Bare SimPy throughput: one process yielding ``env.timeout(1)`` ``n_events`` times."""

    def proc(env: simpy.Environment) -> Any:
        for _ in range(n_events):
            yield env.timeout(1)

    env = simpy.Environment()
    env.process(proc(env))
    t0 = time.perf_counter()
    env.run()
    return n_events / (time.perf_counter() - t0)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=1_000_000, help="operations (default 10**6)")
    parser.add_argument("--events", type=int, default=None, help="SimPy timeouts (default: ops)")
    parser.add_argument("--seed", type=int, default=20240611)
    parser.add_argument("--levels", type=int, default=5, help="depth levels to print per side")
    args = parser.parse_args(argv)
    n_events = args.ops if args.events is None else args.events

    stream = make_stream(args.ops, np.random.default_rng(args.seed))
    book = OrderBook("bench")
    calls = _bind(book, stream)
    elapsed = run_single(book, calls)
    ops_s = args.ops / elapsed
    simpy_s = simpy_timeouts_per_second(n_events)

    counts = np.bincount([op for op, _ in stream], minlength=3)
    depth = book.depth(args.levels)
    n_bid_levels = len(book.depth(10**9).bids)
    n_ask_levels = len(book.depth(10**9).asks)
    n_bids, n_asks = len(book.orders("buy")), len(book.orders("sell"))
    print(f"operations: {args.ops:,} (passive {counts[0]:,}, marketable {counts[1]:,}, "
          f"cancel {counts[2]:,}), seed {args.seed}")
    print(f"order book, single-order API: {ops_s:,.0f} ops/s ({elapsed:.2f} s)")
    print(f"bare SimPy timeouts:          {simpy_s:,.0f} events/s ({n_events:,} events)")
    print(f"ratio book ops / SimPy events: {ops_s / simpy_s:.2f}")
    print(f"final book: {n_bids:,} bids on {n_bid_levels} levels, "
          f"{n_asks:,} asks on {n_ask_levels} levels "
          f"({(n_bids + n_asks) / max(n_bid_levels + n_ask_levels, 1):,.0f} orders per level); "
          f"last trade {book.last_price}")
    print("  bids (price, qty):", depth.bids)
    print("  asks (price, qty):", depth.asks)


if __name__ == "__main__":
    main()
