"""Argument checks shared by the technologies: every bad value is an
:class:`~mktsim.errors.InvalidParameter` naming the parameter, the entry and its value."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from mktsim.errors import InvalidParameter

FloatArray = NDArray[np.float64]

# Sums of float exponents such as 0.1 + 0.2 + 0.7 miss 1 by an ulp or so; anything within this of
# 1 counts as constant returns.
RTS_TOL = 1e-9


def where(name: str, arr: FloatArray, bad: NDArray[np.bool_]) -> str:
    """``name[i, j](=value)`` for the first offending entry."""
    idx = tuple(int(i) for i in np.argwhere(bad)[0])
    label = f"{name}[{', '.join(map(str, idx))}]" if idx else name
    return f"{label}(={float(arr[idx])!r})"


def as_float(name: str, value: ArrayLike) -> FloatArray:
    try:
        arr = np.array(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidParameter(f"{name} must be numeric; got {value!r}") from exc
    bad = ~np.isfinite(arr)
    if bad.any():
        raise InvalidParameter(f"{where(name, arr, bad)} must be finite")
    return arr


def matrix(name: str, value: ArrayLike) -> FloatArray:
    """A parameter matrix float64[n_firms, n_inputs]; a 1-d row means one firm."""
    arr = as_float(name, value)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise InvalidParameter(
            f"{name} must have shape (n_firms, n_inputs) with both >= 1; got {arr.shape}"
        )
    return arr


def per_firm(name: str, value: ArrayLike, n_firms: int) -> FloatArray:
    """A per-firm parameter float64[n_firms]; a scalar is shared by every firm."""
    arr = as_float(name, value)
    if arr.ndim == 0:
        arr = np.full(n_firms, float(arr))
    if arr.shape != (n_firms,):
        raise InvalidParameter(
            f"{name} must be a scalar or have shape ({n_firms},); got {arr.shape}"
        )
    return arr


def check(name: str, arr: FloatArray, bad: NDArray[np.bool_], rule: str) -> None:
    if bad.any():
        raise InvalidParameter(f"{where(name, arr, bad)} must be {rule}")


def freeze(*arrays: FloatArray) -> None:
    for arr in arrays:
        arr.setflags(write=False)


def inputs(x: ArrayLike, n_firms: int, n_inputs: int) -> FloatArray:
    arr = as_float("x", x)
    try:
        arr = np.array(np.broadcast_to(arr, (n_firms, n_inputs)))
    except ValueError as exc:
        raise InvalidParameter(
            f"x must have shape ({n_inputs},) or ({n_firms}, {n_inputs}); got {arr.shape}"
        ) from exc
    check("x", arr, arr < 0, ">= 0")
    return arr


def prices(
    p_out: ArrayLike, p_in: ArrayLike, n_firms: int, n_inputs: int
) -> tuple[FloatArray, FloatArray]:
    po = as_float("p_out", p_out)
    pi = as_float("p_in", p_in)
    try:
        po = np.array(np.broadcast_to(po, (n_firms,)))
    except ValueError as exc:
        raise InvalidParameter(
            f"p_out must be a scalar or have shape ({n_firms},); got {po.shape}"
        ) from exc
    try:
        pi = np.array(np.broadcast_to(pi, (n_firms, n_inputs)))
    except ValueError as exc:
        raise InvalidParameter(
            f"p_in must have shape ({n_inputs},) or ({n_firms}, {n_inputs}); got {pi.shape}"
        ) from exc
    check("p_out", po, po < 0, ">= 0")
    check("p_in", pi, pi < 0, ">= 0")
    return po, pi


def need_positive_prices(pi: FloatArray, used: NDArray[np.bool_]) -> None:
    bad = used & (pi <= 0)
    if bad.any():
        raise InvalidParameter(
            f"{where('p_in', pi, bad)} must be > 0 for an input the technology uses: "
            "a free productive input makes a price taker's demand for it unbounded"
        )


def finite_optimum(name: str, y: FloatArray, x: FloatArray) -> tuple[FloatArray, FloatArray]:
    bad = ~(np.isfinite(y) & np.isfinite(x).all(axis=1))
    if bad.any():
        i = int(np.argmax(bad))
        raise InvalidParameter(
            f"{name} firm {i}: the profit-maximising output (={float(y[i])!r}) overflows float64; "
            "returns to scale very close to 1 make supply explode, so rescale prices or lower "
            "the returns to scale"
        )
    return y, x


def refuse_constant_returns(name: str, rts: FloatArray) -> None:
    crs = rts >= 1 - RTS_TOL
    if crs.any():
        i = int(np.argmax(crs))
        raise InvalidParameter(
            f"{name} firm {i} has returns to scale (={rts[i]!r}) of 1: with constant returns a "
            "price taker's supply is 0, any amount or unbounded depending on whether p_out is "
            "below, at or above unit_cost(p_in), so it has no unique supply; use decreasing "
            "returns (< 1) for supply/input_demand, or unit_cost for the zero-profit price"
        )
