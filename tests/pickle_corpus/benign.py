"""Benign artefacts: what data scientists really save, through each library's own writer.

A guard that blocks any of these is broken for its users, however many payloads
it stops. Every case keeps the object it saved (``expected``) and a comparison
that knows the object's library (``equals``).
"""

from __future__ import annotations

import collections
import datetime
import decimal
import fractions
import pickle
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cloudpickle
import joblib
import numpy as np
import pandas as pd
import torch
from safetensors.torch import save_file
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from .cases import (
    BenignCase,
    dill_load,
    joblib_load,
    numpy_load,
    numpy_load_all,
    pandas_read_pickle,
    pickle_load,
    safetensors_load,
    torch_load,
)
from .dill_state import load_dill, pickle_registry
from .equality import estimator_equals, module_equals, same

Artefact = Callable[[Path], BenignCase]
ARTEFACTS: list[Artefact] = []


def artefact(function: Artefact) -> Artefact:
    """Register an artefact; the case it writes is named after the function."""
    ARTEFACTS.append(function)
    return function


def benign_cases(directory: Path) -> list[BenignCase]:
    """Write every benign artefact into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    cases = []
    # Artefacts are written as by a process that never imported dill (which the
    # corpus does), except where a case says otherwise.
    with pickle_registry(with_dill=False):
        for make in ARTEFACTS:
            case = make(directory)
            assert case.name == make.__name__, f"{make.__name__} must write a case of its own name"
            cases.append(case)
    return cases


def _rng() -> np.random.Generator:
    return np.random.default_rng(7)


# --- numpy -------------------------------------------------------------------------------------


@artefact
def npy_float_matrix(directory: Path) -> BenignCase:
    matrix = _rng().normal(size=(64, 8))
    matrix[3, 2] = np.nan
    path = directory / "npy_float_matrix.npy"
    np.save(path, matrix)
    return BenignCase(
        name="npy_float_matrix",
        description="numpy float64 matrix (with a NaN), np.save / np.load",
        path=path,
        load=numpy_load(path, allow_pickle=False),
        expected=matrix,
        equals=same,
    )


@artefact
def npy_object_array_of_values(directory: Path) -> BenignCase:
    values = np.empty(5, dtype=object)
    values[:] = ["a label", 42, [1, 2, 3], {"k": (1.5, None)}, None]
    path = directory / "npy_object_array_of_values.npy"
    np.save(path, values, allow_pickle=True)
    return BenignCase(
        name="npy_object_array_of_values",
        description="numpy object array of plain Python values, np.load(allow_pickle=True)",
        path=path,
        load=numpy_load(path, allow_pickle=True),
        expected=values,
        equals=same,
    )


@artefact
def npz_compressed_arrays(directory: Path) -> BenignCase:
    arrays = {
        "ids": np.arange(100, dtype=np.int64),
        "scores": _rng().random(100).astype(np.float32),
        "mask": _rng().random(100) > 0.5,
        "labels": np.array(["cat", "dog", "bird"]),
    }
    path = directory / "npz_compressed_arrays.npz"
    np.savez_compressed(path, **arrays)
    return BenignCase(
        name="npz_compressed_arrays",
        description="numpy .npz (compressed) of int, float32, bool and unicode arrays",
        path=path,
        load=numpy_load_all(path),
        expected=arrays,
        equals=same,
    )


@artefact
def numpy_arrays_pickle(directory: Path) -> BenignCase:
    record = np.dtype([("name", "U8"), ("value", "f8")])
    arrays = {
        "matrix": _rng().normal(size=(10, 3)),
        "when": np.array(["2024-01-01", "2024-06-30"], dtype="datetime64[D]"),
        "records": np.array([("a", 1.0), ("b", 2.0)], dtype=record),
        "scalar": np.float32(2.5),
    }
    path = directory / "numpy_arrays_pickle.pkl"
    path.write_bytes(pickle.dumps(arrays, protocol=5))
    return BenignCase(
        name="numpy_arrays_pickle",
        description="dict of numpy arrays (datetime64, structured dtype, a scalar), "
        "pickle protocol 5",
        path=path,
        load=pickle_load(path),
        expected=arrays,
        equals=same,
    )


# --- pandas -------------------------------------------------------------------------------------


def _customers() -> pd.DataFrame:
    rng = _rng()
    return pd.DataFrame(
        {
            "customer_id": np.arange(50),
            "spend": rng.gamma(2.0, 40.0, size=50),
            "segment": rng.choice(["retail", "pro", "edu"], size=50),
            "active": rng.random(50) > 0.3,
        }
    )


def _frame_case(name: str, description: str, path: Path, frame: Any, **options: Any) -> BenignCase:
    frame.to_pickle(path, **options)
    return BenignCase(
        name=name,
        description=description,
        path=path,
        load=pandas_read_pickle(path),
        expected=frame,
        equals=same,
    )


@artefact
def pandas_frame_pickle(directory: Path) -> BenignCase:
    return _frame_case(
        "pandas_frame_pickle",
        "pandas DataFrame, DataFrame.to_pickle / pd.read_pickle",
        directory / "pandas_frame_pickle.pkl",
        _customers(),
    )


@artefact
def pandas_frame_gzip(directory: Path) -> BenignCase:
    return _frame_case(
        "pandas_frame_gzip",
        "pandas DataFrame pickled with gzip compression (.pkl.gz)",
        directory / "pandas_frame_gzip.pkl.gz",
        _customers(),
    )


@artefact
def pandas_frame_protocol5(directory: Path) -> BenignCase:
    return _frame_case(
        "pandas_frame_protocol5",
        "pandas DataFrame pickled with protocol 5 (BYTEARRAY8 buffers)",
        directory / "pandas_frame_protocol5.pkl",
        _customers(),
        protocol=5,
    )


@artefact
def pandas_typed_columns(directory: Path) -> BenignCase:
    frame = pd.DataFrame(
        {
            "segment": pd.Categorical(["retail", "pro", "retail", "edu"]),
            "signed_up": pd.date_range("2024-01-01", periods=4, freq="D", tz="Europe/Paris"),
            "tenure": pd.to_timedelta([1, 2, 3, 4], unit="D"),
            "visits": pd.array([3, None, 5, 1], dtype="Int64"),
            "quarter": pd.period_range("2024Q1", periods=4, freq="Q"),
            "note": pd.array(["a", "b", None, "d"], dtype="string"),
        },
        index=pd.Index(["u1", "u2", "u3", "u4"], name="user"),
    )
    return _frame_case(
        "pandas_typed_columns",
        "pandas DataFrame with categorical, tz-aware datetime, timedelta, nullable Int64, "
        "period and string columns",
        directory / "pandas_typed_columns.pkl",
        frame,
    )


@artefact
def pandas_series_multiindex(directory: Path) -> BenignCase:
    index = pd.MultiIndex.from_product([["a", "b"], [2023, 2024]], names=["shop", "year"])
    series = pd.Series([1.5, 2.5, np.nan, 4.0], index=index, name="revenue")
    return _frame_case(
        "pandas_series_multiindex",
        "pandas Series with a MultiIndex, pickle protocol 4",
        directory / "pandas_series_multiindex.pkl",
        series,
        protocol=4,
    )


# --- scikit-learn -------------------------------------------------------------------------------


def _classification_data() -> tuple[np.ndarray, np.ndarray]:
    rng = _rng()
    features = rng.normal(size=(120, 4))
    labels = (features[:, 0] + 0.5 * features[:, 1] > 0).astype(int)
    return features, labels


def _estimator_case(
    name: str,
    description: str,
    path: Path,
    model: Any,
    inputs: Any,
    write: Callable[[Any, Path], object],
    load: Callable[[Path], str],
) -> BenignCase:
    write(model, path)
    return BenignCase(
        name=name,
        description=description,
        path=path,
        load=load(path),
        expected=model,
        equals=estimator_equals(inputs),
    )


def _pickle_dump(obj: Any, path: Path) -> None:
    path.write_bytes(pickle.dumps(obj))


@artefact
def sklearn_pipeline_joblib(directory: Path) -> BenignCase:
    features, labels = _classification_data()
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(features, labels)
    return _estimator_case(
        "sklearn_pipeline_joblib",
        "scikit-learn Pipeline(StandardScaler, LogisticRegression), joblib.dump",
        directory / "sklearn_pipeline_joblib.joblib",
        model,
        features[:10],
        joblib.dump,
        joblib_load,
    )


@artefact
def sklearn_random_forest_joblib_compressed(directory: Path) -> BenignCase:
    features, labels = _classification_data()
    model = RandomForestClassifier(n_estimators=8, max_depth=4, random_state=0)
    model.fit(features, labels)
    return _estimator_case(
        "sklearn_random_forest_joblib_compressed",
        "scikit-learn RandomForestClassifier, joblib.dump(compress=3)",
        directory / "sklearn_random_forest.joblib",
        model,
        features[:10],
        lambda obj, path: joblib.dump(obj, path, compress=3),
        joblib_load,
    )


@artefact
def sklearn_gradient_boosting_pickle(directory: Path) -> BenignCase:
    features, labels = _classification_data()
    model = GradientBoostingClassifier(n_estimators=10, random_state=0).fit(features, labels)
    return _estimator_case(
        "sklearn_gradient_boosting_pickle",
        "scikit-learn GradientBoostingClassifier, pickle.dump",
        directory / "sklearn_gradient_boosting.pkl",
        model,
        features[:10],
        _pickle_dump,
        pickle_load,
    )


@artefact
def sklearn_column_transformer_joblib(directory: Path) -> BenignCase:
    frame = _customers()
    frame.loc[[2, 7], "spend"] = np.nan
    labels = (frame["spend"].fillna(0) > 80).astype(int)
    preprocess = ColumnTransformer(
        [
            ("categories", OneHotEncoder(handle_unknown="ignore"), ["segment"]),
            ("numbers", make_pipeline(SimpleImputer(), StandardScaler()), ["spend"]),
        ]
    )
    model = Pipeline([("preprocess", preprocess), ("classify", LogisticRegression())])
    model.fit(frame, labels)
    return _estimator_case(
        "sklearn_column_transformer_joblib",
        "scikit-learn ColumnTransformer (OneHotEncoder + SimpleImputer/StandardScaler) and "
        "LogisticRegression on a DataFrame, joblib.dump",
        directory / "sklearn_column_transformer.joblib",
        model,
        frame.head(10),
        joblib.dump,
        joblib_load,
    )


# --- torch ---------------------------------------------------------------------------------------


def _network() -> torch.nn.Sequential:
    return torch.nn.Sequential(
        torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.BatchNorm1d(8), torch.nn.Linear(8, 2)
    )


def _probe() -> torch.Tensor:
    return torch.linspace(-1.0, 1.0, 12).reshape(3, 4)


@artefact
def torch_state_dict(directory: Path) -> BenignCase:
    state = _network().state_dict()
    path = directory / "torch_state_dict.pt"
    torch.save(state, path)
    return BenignCase(
        name="torch_state_dict",
        description="torch state_dict (zip format), torch.load with its default weights_only=True",
        path=path,
        load=torch_load(path),
        expected=state,
        equals=same,
    )


@artefact
def torch_full_module(directory: Path) -> BenignCase:
    network = _network().eval()
    path = directory / "torch_full_module.pt"
    torch.save(network, path)
    return BenignCase(
        name="torch_full_module",
        description="a whole torch nn.Sequential (Linear, ReLU, BatchNorm1d), "
        "torch.load(weights_only=False)",
        path=path,
        load=torch_load(path, weights_only=False),
        expected=network,
        equals=module_equals(_probe()),
    )


@artefact
def torch_training_checkpoint(directory: Path) -> BenignCase:
    network = _network()
    optimizer = torch.optim.Adam(network.parameters(), lr=1e-3)
    loss = network(_probe()).pow(2).mean()
    loss.backward()
    optimizer.step()
    checkpoint = {
        "epoch": 7,
        "model": network.state_dict(),
        "optimizer": optimizer.state_dict(),
        "loss": loss.item(),
        "history": [0.9, 0.5, loss.item()],
    }
    path = directory / "torch_training_checkpoint.pt"
    torch.save(checkpoint, path)
    return BenignCase(
        name="torch_training_checkpoint",
        description="torch training checkpoint: model and Adam optimizer state, epoch, loss; "
        "torch.load(weights_only=False)",
        path=path,
        load=torch_load(path, weights_only=False),
        expected=checkpoint,
        equals=same,
    )


@artefact
def torch_legacy_format(directory: Path) -> BenignCase:
    state = _network().state_dict()
    path = directory / "torch_legacy_format.pt"
    torch.save(state, path, _use_new_zipfile_serialization=False)
    return BenignCase(
        name="torch_legacy_format",
        description="torch state_dict in the legacy non-zip format (concatenated pickles)",
        path=path,
        load=torch_load(path, weights_only=False),
        expected=state,
        equals=same,
    )


@artefact
def torch_tensors_plain_pickle(directory: Path) -> BenignCase:
    tensors = {"embedding": torch.randn(5, 3), "ids": torch.arange(5)}
    path = directory / "torch_tensors_plain_pickle.pkl"
    path.write_bytes(pickle.dumps(tensors))
    return BenignCase(
        name="torch_tensors_plain_pickle",
        description="torch tensors pickled with plain pickle (torch writes "
        "torch.storage._load_from_bytes for their storages), pickle.load",
        path=path,
        load=pickle_load(path),
        expected=tensors,
        equals=same,
    )


@artefact
def safetensors_state_dict(directory: Path) -> BenignCase:
    state = {name: tensor.contiguous() for name, tensor in _network().state_dict().items()}
    path = directory / "safetensors_state_dict.safetensors"
    save_file(state, path)
    return BenignCase(
        name="safetensors_state_dict",
        description="safetensors file of a state_dict, safetensors.torch.load_file",
        path=path,
        load=safetensors_load(path),
        expected=state,
        equals=same,
    )


# --- joblib, dill, cloudpickle, the standard library --------------------------------------------


@artefact
def joblib_numpy_arrays(directory: Path) -> BenignCase:
    arrays = {"train": _rng().normal(size=(500, 16)), "labels": np.arange(500) % 3}
    path = directory / "joblib_numpy_arrays.joblib"
    joblib.dump(arrays, path)
    return BenignCase(
        name="joblib_numpy_arrays",
        description="dict of numpy arrays, joblib.dump (arrays stored after the pickle)",
        path=path,
        load=joblib_load(path),
        expected=arrays,
        equals=same,
    )


@artefact
def joblib_written_after_importing_dill(directory: Path) -> BenignCase:
    # No range: dill writes it as dill._dill._eval_repr("range(0, 8, 2)"), an eval
    # a guard may fairly refuse (see the malicious dill_eval_repr case).
    layout = {
        "columns": {"age": slice(0, 3), "income": slice(3, 4)},
        "weights": np.arange(4.0),
    }
    path = directory / "joblib_written_after_importing_dill.joblib"
    # as in any notebook that imported dill (or datasets, or multiprocess) before joblib
    with pickle_registry(with_dill=True):
        joblib.dump(layout, path)
    return BenignCase(
        name="joblib_written_after_importing_dill",
        description="joblib dump of slices by a process that imported dill: the file "
        "references dill._dill._load_type('slice')",
        path=path,
        load=joblib_load(path),
        expected=layout,
        equals=same,
    )


def _plain_data() -> dict[str, Any]:
    return {
        "name": "churn-v3",
        "layers": [16, 8, 2],
        "dropout": (0.1, 0.2),
        "tags": {"prod", "tabular"},
        "blob": b"\x00\x01binary",
        "complex": 1 + 2j,
        "nested": {"lr": 0.001, "schedule": None, "ok": True},
    }


@artefact
def dill_plain_data(directory: Path) -> BenignCase:
    data = _plain_data()
    path = directory / "dill_plain_data.pkl"
    path.write_bytes(load_dill().dumps(data))
    return BenignCase(
        name="dill_plain_data",
        description="plain Python data serialised with dill, dill.load",
        path=path,
        load=dill_load(path),
        expected=data,
        equals=same,
    )


@artefact
def cloudpickle_plain_data(directory: Path) -> BenignCase:
    data = _plain_data()
    path = directory / "cloudpickle_plain_data.pkl"
    path.write_bytes(cloudpickle.dumps(data))
    return BenignCase(
        name="cloudpickle_plain_data",
        description="plain Python data serialised with cloudpickle, pickle.load",
        path=path,
        load=pickle_load(path),
        expected=data,
        equals=same,
    )


def _stdlib_values() -> dict[str, Any]:
    factory_default: collections.defaultdict[str, list[int]] = collections.defaultdict(list)
    factory_default["seen"].append(3)
    return {
        "when": datetime.datetime(2024, 5, 17, 9, 30, tzinfo=datetime.timezone.utc),
        "day": datetime.date(2024, 5, 17),
        "duration": datetime.timedelta(hours=2, seconds=5),
        "price": decimal.Decimal("19.99"),
        "ratio": fractions.Fraction(3, 8),
        "run_id": uuid.UUID("12345678-1234-5678-1234-567812345678"),
        "ordered": collections.OrderedDict([("b", 1), ("a", 2)]),
        "by_key": factory_default,
        "counts": collections.Counter("abracadabra"),
        "window": collections.deque([1, 2, 3], maxlen=5),
        "frozen": frozenset({1, 2}),
        "buffer": bytearray(b"xyz"),
    }


def _stdlib_case(directory: Path, protocol: int) -> BenignCase:
    values = _stdlib_values()
    path = directory / f"stdlib_values_protocol{protocol}.pkl"
    path.write_bytes(pickle.dumps(values, protocol=protocol))
    return BenignCase(
        name=f"stdlib_values_protocol{protocol}",
        description="standard library value types (datetime, Decimal, Fraction, UUID, "
        f"OrderedDict, defaultdict(list), Counter, deque, ...), pickle protocol {protocol}",
        path=path,
        load=pickle_load(path),
        expected=values,
        equals=same,
    )


@artefact
def stdlib_values_protocol0(directory: Path) -> BenignCase:
    return _stdlib_case(directory, 0)


@artefact
def stdlib_values_protocol5(directory: Path) -> BenignCase:
    return _stdlib_case(directory, 5)
