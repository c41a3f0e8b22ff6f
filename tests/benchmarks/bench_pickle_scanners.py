"""Benchmark pickle scanners and runtime guards on the corpus of ``tests/pickle_corpus``.

    python -m tests.benchmarks.bench_pickle_scanners [--json results.json] [--skip-runtime]
    python tests/benchmarks/bench_pickle_scanners.py          (same, from the repository root)

Builds the corpus in a temporary directory, then:

- static scanners (picklescan, modelscan, fickling, and this project's
  ``scan_file``) scan every file: malicious files detected, benign files flagged
  (false positives), errors and skipped files, total scan time;
- runtime guards (fickling's ``always_check_safety`` hook, one fresh process per
  file because the hook is global; this project's guard in a real IPython shell)
  load every runtime case through its natural loader: payloads stopped, payloads
  that ran (the canary appeared), benign files that failed to load.

It prints Markdown tables and a conclusion line. Not collected by pytest.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import dataclasses
import io
import json
import logging
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `tests.` importable from the repo root
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.pickle_corpus import BenignCase, MaliciousCase, benign_cases, malicious_cases
from tests.pickle_corpus.runner import run_in_subprocess

# What a static scanner said about one file.
FLAGGED = "flagged"  # dangerous / unsafe: the file would be rejected
REVIEW = "review"  # ours only: neither known safe nor known dangerous
CLEAN = "clean"
ERROR = "error"  # the scanner could not analyse the file and said so
SKIPPED = "skipped"  # the scanner does not look at this kind of file

# How a verdict reads in the per-file tables: for a malicious file a flag is a hit,
# for a benign file it is a false positive.
_MALICIOUS_MARKS = {FLAGGED: "✓", REVIEW: "R", CLEAN: "✗ missed", ERROR: "E", SKIPPED: "S"}
_BENIGN_MARKS = {FLAGGED: "FP", REVIEW: "R", CLEAN: "ok", ERROR: "E", SKIPPED: "S"}


@dataclasses.dataclass(frozen=True)
class Verdict:
    outcome: str
    detail: str = ""


@dataclasses.dataclass
class StaticScanner:
    name: str
    scan: Callable[[Path], Verdict]


# --- the static scanners -------------------------------------------------------------------------


def picklescan_verdict(path: Path) -> Verdict:
    from picklescan.scanner import scan_file_path

    result = scan_file_path(str(path))
    dangerous = sorted(
        f"{g.module}.{g.name}" for g in result.globals if g.safety.name == "Dangerous"
    )
    if result.issues_count or result.infected_files:
        return Verdict(FLAGGED, ", ".join(dangerous))
    if result.scan_err:
        return Verdict(ERROR, "scan error")
    if not result.scanned_files:
        return Verdict(SKIPPED, "no file scanned")
    return Verdict(CLEAN)


def modelscan_verdict(path: Path) -> Verdict:
    from modelscan.modelscan import ModelScan
    from modelscan.settings import DEFAULT_SETTINGS

    scanner = ModelScan(settings=copy.deepcopy(DEFAULT_SETTINGS))
    scanner.scan(path)
    if scanner.issues.all_issues:
        severities = sorted({issue.severity.name for issue in scanner.issues.all_issues})
        return Verdict(FLAGGED, "/".join(severities))
    if scanner.errors:
        return Verdict(ERROR, str(scanner.errors[0])[:80])
    if not scanner.scanned:
        return Verdict(SKIPPED, "unsupported file")
    return Verdict(CLEAN)


def fickling_verdict(path: Path) -> Verdict:
    # fickling's own file scanner, with its zip archive scanner for zip files (torch
    # checkpoints, npz), as its Hugging Face scan does.
    from fickling.analysis import Severity
    from fickling.loader import scan_file, scan_zip_archive

    try:
        if zipfile.is_zipfile(path):
            results = list(scan_zip_archive(str(path), graceful=True).values())
        else:
            results = [scan_file(str(path), graceful=True)]
    except Exception as error:
        return Verdict(ERROR, f"{type(error).__name__}")
    analysed = [r for r in results if r.results]
    if any(r.severity > Severity.LIKELY_SAFE for r in analysed):
        return Verdict(FLAGGED, max(r.severity for r in analysed).name)
    if any(r.errors for r in results):
        return Verdict(ERROR, next(e for r in results for e in r.errors)[:80])
    if not results:
        return Verdict(SKIPPED, "no pickle member")
    return Verdict(CLEAN)


def mlsecops_verdict(path: Path) -> Verdict:
    from mlsecops_jupyter.pickles.scan import scan_file

    try:
        scan = scan_file(path)
    except Exception as error:
        return Verdict(ERROR, f"{type(error).__name__}: {error}"[:80])
    outcome = {"unsafe": FLAGGED, "review": REVIEW, "safe": CLEAN}[scan.verdict]
    return Verdict(outcome, ", ".join(scan.flagged_globals + scan.errors)[:120])


def static_scanners() -> list[StaticScanner]:
    return [
        StaticScanner("picklescan", picklescan_verdict),
        StaticScanner("modelscan", modelscan_verdict),
        StaticScanner("fickling", fickling_verdict),
        StaticScanner("mlsecops scan_file", mlsecops_verdict),
    ]


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Scanners log and print per file; keep the benchmark's output to its tables."""
    logging.disable(logging.CRITICAL)
    sink = io.StringIO()
    try:
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            yield
    finally:
        logging.disable(logging.NOTSET)


@dataclasses.dataclass
class StaticResult:
    scanner: str
    malicious: dict[str, Verdict]
    benign: dict[str, Verdict]
    seconds: float
    unavailable: str = ""


def run_static(
    scanner: StaticScanner, malicious: Sequence[MaliciousCase], benign: Sequence[BenignCase]
) -> StaticResult:
    try:
        with quiet():
            scanner.scan(benign[0].path)  # imports and warm-up, outside the timing
    except ImportError as error:
        return StaticResult(scanner.name, {}, {}, 0.0, unavailable=str(error))
    started = time.perf_counter()
    with quiet():
        found = {case.name: safe_scan(scanner, case.path) for case in malicious}
        passed = {case.name: safe_scan(scanner, case.path) for case in benign}
    return StaticResult(scanner.name, found, passed, time.perf_counter() - started)


def safe_scan(scanner: StaticScanner, path: Path) -> Verdict:
    try:
        return scanner.scan(path)
    except Exception as error:  # a scanner crash is an error verdict, not a benchmark crash
        return Verdict(ERROR, f"crashed: {type(error).__name__}")


# --- the runtime guards --------------------------------------------------------------------------


@dataclasses.dataclass
class RuntimeResult:
    guard: str
    malicious: dict[str, dict[str, Any]]
    benign: dict[str, dict[str, Any]]
    seconds: float
    unavailable: str = ""


def _runner_case(case: MaliciousCase | BenignCase, canary: Path) -> dict[str, Any]:
    return {
        "name": case.name,
        "load": case.load,
        "canary": str(canary),
        "settle_seconds": getattr(case, "settle_seconds", 0.0),
    }


def run_fickling_hook(
    malicious: Sequence[MaliciousCase], benign: Sequence[BenignCase], canary: Path, work: Path
) -> RuntimeResult:
    """One process per file (forked after the loaders are imported): fickling's hook
    replaces pickle's loaders process-wide and cannot be removed."""
    cases = [_runner_case(case, canary) for case in [*malicious, *benign]]
    started = time.perf_counter()
    results = run_in_subprocess(cases, work / "fickling-hook", guard="fickling", fork_per_case=True)
    by_name = {result["name"]: result for result in results}
    return RuntimeResult(
        "fickling hook",
        {case.name: by_name[case.name] for case in malicious},
        {case.name: by_name[case.name] for case in benign},
        time.perf_counter() - started,
    )


def run_mlsecops_guard(
    malicious: Sequence[MaliciousCase], benign: Sequence[BenignCase], canary: Path, work: Path
) -> RuntimeResult:
    """Every file loaded as a cell of one IPython shell with the extension on, as a user would."""
    cases = [_runner_case(case, canary) for case in [*malicious, *benign]]
    started = time.perf_counter()
    try:
        results = run_in_subprocess(cases, work / "mlsecops-guard", guard="mlsecops")
    except RuntimeError as error:
        return RuntimeResult("mlsecops guard", {}, {}, 0.0, unavailable=str(error)[-300:])
    by_name = {result["name"]: result for result in results}
    return RuntimeResult(
        "mlsecops guard",
        {case.name: by_name[case.name] for case in malicious},
        {case.name: by_name[case.name] for case in benign},
        time.perf_counter() - started,
    )


def payload_outcome(result: dict[str, Any]) -> str:
    if result["canary_created"]:
        return "ran"
    if result["blocked_by"]:
        return "stopped"
    return f"failed ({result['error']})" if result["error"] else "no effect"


def benign_outcome(result: dict[str, Any]) -> str:
    if result["error"] is None:
        return "loaded, warned" if result.get("warnings") else "loaded"
    return "blocked" if result["blocked_by"] else f"broken ({result['error']})"


# --- reporting ----------------------------------------------------------------------------------


def count(verdicts: dict[str, Verdict], *outcomes: str) -> int:
    return sum(v.outcome in outcomes for v in verdicts.values())


def static_table(results: Sequence[StaticResult], malicious_total: int, benign_total: int) -> str:
    rows = [
        "| scanner | malicious detected | malicious errors / skipped | benign flagged "
        "(false positives) | benign errors / skipped / review | scan time (s) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        if r.unavailable:
            rows.append(f"| {r.scanner} | not installed: {r.unavailable} | | | | |")
            continue
        rows.append(
            f"| {r.scanner} | {count(r.malicious, FLAGGED)}/{malicious_total} "
            f"| {count(r.malicious, ERROR)} / {count(r.malicious, SKIPPED)} "
            f"| {count(r.benign, FLAGGED)}/{benign_total} "
            f"| {count(r.benign, ERROR)} / {count(r.benign, SKIPPED)} / {count(r.benign, REVIEW)} "
            f"| {r.seconds:.2f} |"
        )
    return "\n".join(rows)


def runtime_table(results: Sequence[RuntimeResult], malicious_total: int, benign_total: int) -> str:
    rows = [
        "| runtime guard | payloads stopped | payloads that ran | benign loaded silently "
        "| benign loaded with a warning / blocked / broken | time (s) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        if r.unavailable:
            rows.append(f"| {r.guard} | unavailable: {r.unavailable.splitlines()[-1]} | | | | |")
            continue
        outcomes = [payload_outcome(x) for x in r.malicious.values()]
        loads = [benign_outcome(x) for x in r.benign.values()]
        rows.append(
            f"| {r.guard} | {outcomes.count('stopped')}/{malicious_total} "
            f"| {outcomes.count('ran')} | {loads.count('loaded')}/{benign_total} "
            f"| {loads.count('loaded, warned')} / {loads.count('blocked')} "
            f"/ {sum(o.startswith('broken') for o in loads)} "
            f"| {r.seconds:.1f} |"
        )
    return "\n".join(rows)


def per_case_table(
    title: str,
    names: Sequence[str],
    statics: Sequence[StaticResult],
    runtimes: Sequence[RuntimeResult],
    *,
    benign: bool,
) -> str:
    statics = [s for s in statics if not s.unavailable]
    runtimes = [r for r in runtimes if not r.unavailable]
    header = ["case", *(s.scanner for s in statics), *(r.guard for r in runtimes)]
    rows = [f"**{title}**", "", "| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for name in names:
        cells = [name]
        marks = _BENIGN_MARKS if benign else _MALICIOUS_MARKS
        for s in statics:
            verdict = (s.benign if benign else s.malicious)[name]
            cells.append(marks[verdict.outcome])
        for r in runtimes:
            result = (r.benign if benign else r.malicious).get(name)
            if result is None:
                cells.append("-")
            else:
                cells.append(benign_outcome(result) if benign else payload_outcome(result))
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def misses(statics: Sequence[StaticResult]) -> str:
    lines = ["**Malicious files each scanner did not flag**", ""]
    for s in statics:
        if s.unavailable:
            continue
        missed = [
            f"{n} ({_MALICIOUS_MARKS[v.outcome]})"
            for n, v in s.malicious.items()
            if v.outcome != FLAGGED
        ]
        lines.append(f"- {s.scanner} ({len(missed)}): {', '.join(missed) or 'none'}")
    lines += ["", "**Benign files each scanner flagged**", ""]
    for s in statics:
        if s.unavailable:
            continue
        flagged = [f"{n} ({v.detail})" for n, v in s.benign.items() if v.outcome == FLAGGED]
        lines.append(f"- {s.scanner} ({len(flagged)}): {'; '.join(flagged) or 'none'}")
    return "\n".join(lines)


def conclusion(
    statics: Sequence[StaticResult],
    runtimes: Sequence[RuntimeResult],
    malicious_total: int,
    runtime_total: int,
    benign_total: int,
) -> str:
    parts = []
    for s in statics:
        if not s.unavailable:
            detected = count(s.malicious, FLAGGED) / malicious_total
            false_positives = count(s.benign, FLAGGED) / benign_total
            parts.append(f"{s.scanner} {detected:.0%} detected / {false_positives:.0%} FP")
    for r in runtimes:
        if not r.unavailable:
            stopped = sum(payload_outcome(x) == "stopped" for x in r.malicious.values())
            loaded = sum(benign_outcome(x) == "loaded" for x in r.benign.values())
            parts.append(
                f"{r.guard} stops {stopped / runtime_total:.0%} of payloads and loads "
                f"{loaded / benign_total:.0%} of benign files silently"
            )
    return "Conclusion: " + "; ".join(parts) + "."


# --- main ---------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, help="also write every verdict to this file")
    parser.add_argument("--skip-runtime", action="store_true", help="static scanners only")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="pickle-bench-") as temporary:
        root = Path(temporary)
        canary = root / "canary"
        started = time.perf_counter()
        malicious = malicious_cases(root / "malicious", canary)
        benign = benign_cases(root / "benign")
        built = time.perf_counter() - started
        runtime_cases = [case for case in malicious if case.runtime]
        print(
            f"Corpus: {len(malicious)} malicious files ({len(runtime_cases)} loaded at runtime), "
            f"{len(benign)} benign files, built in {built:.1f} s.\n"
        )

        statics = [run_static(scanner, malicious, benign) for scanner in static_scanners()]
        runtimes: list[RuntimeResult] = []
        if not args.skip_runtime:
            runtimes.append(run_fickling_hook(runtime_cases, benign, canary, root / "runs"))
            runtimes.append(run_mlsecops_guard(runtime_cases, benign, canary, root / "runs"))

    print("## Static scanners\n")
    print(static_table(statics, len(malicious), len(benign)) + "\n")
    if runtimes:
        print("## Runtime guards\n")
        print(runtime_table(runtimes, len(runtime_cases), len(benign)) + "\n")
    print(misses(statics) + "\n")
    print("## Per file\n")
    print(
        "Static: ✓ flagged, ✗ missed, FP false positive, ok passed, E error (could not "
        "analyse), S skipped (not scanned), R review. Runtime: stopped, ran (the canary "
        "appeared), loaded, loaded, warned (the guard warned: not silent), blocked, broken "
        "(another error), failed (the load failed before any payload ran).\n"
    )
    print(
        per_case_table("Malicious", [c.name for c in malicious], statics, runtimes, benign=False)
        + "\n"
    )
    print(per_case_table("Benign", [c.name for c in benign], statics, runtimes, benign=True) + "\n")
    print(conclusion(statics, runtimes, len(malicious), len(runtime_cases), len(benign)))

    if args.json:
        args.json.write_text(json.dumps(_as_json(statics, runtimes, malicious), indent=1))
    return 0


def _as_json(
    statics: Sequence[StaticResult], runtimes: Sequence[RuntimeResult], malicious: Sequence[Any]
) -> dict[str, Any]:
    return {
        "techniques": {c.name: {"technique": c.technique, "source": c.source} for c in malicious},
        "static": {
            s.scanner: {
                "seconds": s.seconds,
                "unavailable": s.unavailable,
                "malicious": {n: dataclasses.asdict(v) for n, v in s.malicious.items()},
                "benign": {n: dataclasses.asdict(v) for n, v in s.benign.items()},
            }
            for s in statics
        },
        "runtime": {
            r.guard: {
                "seconds": r.seconds,
                "unavailable": r.unavailable,
                "malicious": r.malicious,
                "benign": r.benign,
            }
            for r in runtimes
        },
    }


if __name__ == "__main__":
    sys.exit(main())
