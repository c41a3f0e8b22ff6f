"""Is the loaded object the one that was saved? Library-aware, recursive comparison.

Containers compare item by item; numpy arrays, pandas objects and torch tensors
by value, dtype and shape; models by their parameters and by their predictions
on fixed inputs (two models with equal parameters but broken internals would
still predict differently).
"""

from __future__ import annotations

import collections
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator


def same(a: Any, b: Any) -> bool:
    """Deep equality across the types the benign corpus holds."""
    if type(a) is not type(b):
        return False
    for kind, compare in _COMPARERS:
        if isinstance(a, kind):
            return compare(a, b)
    return bool(a == b)


def _tensors(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and bool(torch.equal(a, b))


def _arrays(a: np.ndarray, b: np.ndarray) -> bool:
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    if a.dtype == object:
        return all(same(x, y) for x, y in zip(a.ravel(), b.ravel(), strict=True))
    nan_aware = a.dtype.kind in "fc"
    return bool(np.array_equal(a, b, equal_nan=nan_aware))


def _pandas(a: Any, b: Any) -> bool:
    assert_equal = {
        pd.DataFrame: pd.testing.assert_frame_equal,
        pd.Series: pd.testing.assert_series_equal,
    }.get(type(a), pd.testing.assert_index_equal)
    try:
        assert_equal(a, b, check_exact=True)
    except AssertionError:
        return False
    return True


def _mappings(a: dict[Any, Any], b: dict[Any, Any]) -> bool:
    if isinstance(a, collections.defaultdict) and a.default_factory != b.default_factory:  # type: ignore[attr-defined]
        return False
    if isinstance(a, collections.OrderedDict) and list(a) != list(b):
        return False
    return a.keys() == b.keys() and all(same(a[key], b[key]) for key in a)


def _sequences(a: list[Any] | tuple[Any, ...], b: list[Any] | tuple[Any, ...]) -> bool:
    return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))


def _floats(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def _estimators(a: BaseEstimator, b: BaseEstimator) -> bool:
    # Parameters only; predictions are compared by estimator_equals, which knows the inputs.
    return same(a.get_params(deep=False), b.get_params(deep=False))


def _modules(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return same(dict(a.state_dict()), dict(b.state_dict()))


_COMPARERS: list[tuple[type | tuple[type, ...], Callable[[Any, Any], bool]]] = [
    (torch.Tensor, _tensors),
    (np.ndarray, _arrays),
    ((pd.DataFrame, pd.Series, pd.Index), _pandas),
    (BaseEstimator, _estimators),
    (torch.nn.Module, _modules),
    (dict, _mappings),
    ((list, tuple, collections.deque), _sequences),
    (float, _floats),
]


def estimator_equals(inputs: Any) -> Callable[[Any, Any], bool]:
    """Same parameters, and the same predictions (and probabilities) on ``inputs``."""

    def equals(saved: Any, loaded: Any) -> bool:
        if not same(saved, loaded):
            return False
        for method in ("predict", "predict_proba", "transform"):
            if hasattr(saved, method):
                expected = getattr(saved, method)(inputs)
                if not same(np.asarray(expected), np.asarray(getattr(loaded, method)(inputs))):
                    return False
        return True

    return equals


def module_equals(probe: torch.Tensor) -> Callable[[Any, Any], bool]:
    """Same class, same parameters and buffers, and the same output on ``probe``."""

    def equals(saved: Any, loaded: Any) -> bool:
        if not same(saved, loaded):
            return False
        with torch.no_grad():
            return same(saved.eval()(probe), loaded.eval()(probe))

    return equals
