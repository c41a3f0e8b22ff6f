"""The personal-data guardrail: after each cell, scan new or changed frames.

What a user sees:

- a cell that creates or changes a frame holding personal data gets one
  warning line under it (variable, columns → entity types, share of rows,
  confidence, a masked example), published as a ``pii.found`` event;
- each frame version is scanned once; unchanged frames are never rescanned
  (:class:`~.watcher.FrameWatcher`). A new version of a variable is warned
  about again only when what it holds changed (other columns or entity
  types): re-running the cell that loads ``customers`` does not repeat the
  warning, adding an e-mail column does. A copy under a new name is warned
  about: it is one more place the data lives;
- entity types whose ``pii.actions`` entry is ``block`` (e.g. ``US_SSN``)
  publish ``pii.blocked`` and the cell ends with an error, for every new
  version of a frame holding them (so a cell that changes such a frame fails
  again until the column is dropped). The frame itself is left alone: the
  guard never deletes or changes user data.
- a Spark DataFrame is scanned by Spark on a worker thread; the cell waits
  for it a few seconds at most, then it finishes in the background and is
  reported after the next cell (:mod:`.spark_post_cell`).

How the block reaches the user: IPython calls ``post_run_cell`` callbacks
after the cell, and prints any exception they raise as "Error in callback"
without failing the cell. So the guard does not raise: it marks the cell's
``ExecutionResult`` as failed (``error_in_exec``) and shows the error with
``shell.showtraceback`` as the cell's own error. In Jupyter (ipykernel reads
the result after the callbacks) the cell shows a red error, the execute reply
is ``status: error`` (``Run all`` stops there) and ``result.success`` is false.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from typing import Any

from mlsecops_jupyter.pii.events import PiiBlocked, PiiFound, column_action, columns_of
from mlsecops_jupyter.pii.report import PiiReport
from mlsecops_jupyter.pii.scan import scan_frame
from mlsecops_jupyter.pii.spark_frames import session_stopped
from mlsecops_jupyter.pii.spark_post_cell import SparkScans
from mlsecops_jupyter.pii.watcher import FrameChange, FrameWatcher
from mlsecops_jupyter.review.column_reviews import as_reviews_of, reviews_in
from mlsecops_jupyter.session import GuardrailBlock, Session

NAME = "pii"


class PersonalDataBlocked(GuardrailBlock):
    """A frame holds an entity type the policy forbids in notebooks."""


def policy_options(session: Session) -> dict[str, Any]:
    """The ``pii.*`` policy keys as ``scan_frame`` arguments (``ignore`` actions included)."""
    policy = session.policy
    actions = dict(policy["pii.actions"])
    ignored = set(policy["pii.ignore_entities"]) | {e for e, a in actions.items() if a == "ignore"}
    return {
        "sample_size": int(policy["pii.sample_size"]),
        "ignore_entities": tuple(sorted(ignored)),
        "skip_columns": tuple(policy["pii.skip_columns"]),
        "spacy_model": policy["pii.spacy_model"] or None,
        # Reviewed columns (policy and this session's %mlsecops review): shown, not reported.
        "reviews": reviews_in(policy["pii.reviewed"]),
    }


def _warm_up() -> None:
    from mlsecops_jupyter.pii import gazetteer, recognizers

    # A failure here shows up again, and is recorded, when a scan needs them.
    with contextlib.suppress(Exception):
        recognizers.cell_matchers()
        gazetteer.gazetteer()


class PiiGuard:
    """Guardrail protocol: ``install`` registers the post-cell scan, ``uninstall`` forgets."""

    name = NAME

    def __init__(self) -> None:
        self.watcher = FrameWatcher()
        self._session: Session | None = None
        self._shell: Any = None
        self.warm_up: threading.Thread | None = None
        # variable -> what was last reported for it: {column: entities}
        self._reported: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {}
        self.spark = SparkScans()  # Spark DataFrames: scanned off the cell's thread

    def install(self, session: Session, hooks: Any) -> None:
        import IPython

        self._session = session
        self._shell = IPython.get_ipython()
        hooks.add("post_run_cell", self.name, self.after_cell)
        if session.policy["pii.enabled"]:
            # presidio's registry and the word lists take about 2 s to build: build
            # them while the user's first cells run, not in the first frame's cell.
            self.warm_up = threading.Thread(
                target=_warm_up, name="mlsecops-pii-warm-up", daemon=True
            )
            self.warm_up.start()

    def uninstall(self) -> None:
        self.spark.stop()
        self.watcher.forget()
        self._reported.clear()
        self._session = None
        self._shell = None

    # --- after each cell ---------------------------------------------------------------

    def after_cell(self, result: Any = None) -> None:
        session, shell = self._session, self._shell
        if session is None or shell is None or not session.policy["pii.enabled"]:
            return
        changes = self.watcher.changes(shell.user_ns, session.policy["pii.skip_variables"])
        if not changes and not self.spark.pending:
            self._forget_missing(shell.user_ns)
            return
        options = policy_options(session)
        actions = dict(session.policy["pii.actions"])
        blocks: list[PiiBlocked] = self._late_spark_reports(session, actions)
        self.spark.start_cell()
        for change in changes:
            report = self._scan(session, change, options)
            if report is None:
                continue
            blocked = self._publish(session, change, report, actions)
            if blocked is not None:
                blocks.append(blocked)
        self._forget_missing(shell.user_ns)
        if blocks:
            fail_cell(shell, result, block_error(blocks, session))

    def _scan(
        self, session: Session, change: FrameChange, options: dict[str, Any]
    ) -> PiiReport | None:
        try:
            reviews = as_reviews_of(options.get("reviews", ()), change.names)
            options = {**options, "reviews": reviews}
            if self.spark.handles(change.frame):
                if session_stopped(change.frame):
                    return None
                run = functools.partial(
                    scan_frame, change.frame, variable=change.names[0], **options
                )
                return self.spark.scan(change, run, session.notify)
            return scan_frame(change.frame, variable=change.names[0], **options)
        except Exception as error:
            # One frame the scanner cannot read must not hide the others, and is
            # not retried after every cell (the next change of it is).
            session.record_failure(self.name, error)
            return None

    def _late_spark_reports(self, session: Session, actions: dict[str, str]) -> list[PiiBlocked]:
        """Publish the Spark scans that finished in the background; their blocks fail this cell."""
        blocks: list[PiiBlocked] = []
        for change, outcome in self.spark.finished():
            if isinstance(outcome, BaseException):
                session.record_failure(self.name, outcome)
                continue
            blocked = self._publish(session, change, outcome, actions)
            if blocked is not None:
                blocks.append(blocked)
        return blocks

    def _publish(
        self, session: Session, change: FrameChange, report: PiiReport, actions: dict[str, str]
    ) -> PiiBlocked | None:
        names = change.names
        # Accepting a finding does not lift a block: only "false positive" does.
        report = report.reinstated(
            lambda r: (
                r.review.verdict == "accepted"
                and column_action(r.finding.entities, actions) == "block"
            )
        )
        # Reviewed columns count as held: a review alone is not news about the frame.
        seen = (*report.findings, *(r.finding for r in report.reviewed))
        held = tuple(sorted((f.column, tuple(f.entities)) for f in seen))
        fresh = [n for n in names if self._reported.get(n) != held]
        for name in names:
            self._reported[name] = held
        if not report.findings:
            return None
        common: dict[str, Any] = {
            "variable": names[0],
            "aliases": tuple(names[1:]),
            "library": report.library,
            "rows": report.n_rows,
            "columns": report.n_columns,
            "rows_examined": report.rows_examined,
            "full_scan": report.full_scan,
        }
        blocked_columns = columns_of(report, actions, only="block")
        forbidden = {e for c in blocked_columns for e in c.entities if actions.get(e) == "block"}
        if blocked_columns:
            source = session.policy.source
            event = PiiBlocked(
                findings=blocked_columns,
                blocked_entities=tuple(sorted(forbidden)),
                policy_file=str(source.path) if source is not None else None,
                **common,
            )
            session.publish(event)
            warned = columns_of(report, actions, only="warn")
            if warned and fresh:
                session.publish(PiiFound(findings=warned, **common))
            return event
        if fresh:
            session.publish(PiiFound(findings=columns_of(report, actions), **common))
        return None

    def _forget_missing(self, namespace: Any) -> None:
        for name in [n for n in self._reported if n not in namespace]:
            del self._reported[name]


def block_error(blocks: list[PiiBlocked], session: Session) -> PersonalDataBlocked:
    where = "; ".join(f"`{b.variable}` ({_columns(b)})" for b in blocks)
    entities = sorted({e for b in blocks for e in b.blocked_entities})
    source = session.policy.source
    policy_file = str(source) if source is not None else "the policy file"
    first = blocks[0]
    columns = ", ".join(repr(c.column) for c in first.findings)
    return PersonalDataBlocked(
        what=f"personal data in {where}",
        why=(
            f"{', '.join(entities)} may not be held in a notebook (pii.actions in "
            f"{policy_file}). The frame was left as it is; this cell is marked failed"
        ),
        how_to_allow=(
            f"drop the column(s) {columns} from `{first.variable}`, or ask for "
            f'pii.actions {entities[0]} = "warn" in {policy_file}'
        ),
    )


def _columns(block: PiiBlocked) -> str:
    return ", ".join(f"{c.column}: {'/'.join(c.entities)}" for c in block.findings)


def fail_cell(shell: Any, result: Any, error: GuardrailBlock) -> None:
    """Make the cell that just ran end with ``error``, as if it had raised it."""
    if result is not None and getattr(result, "error_in_exec", None) is None:
        with contextlib.suppress(AttributeError):
            result.error_in_exec = error
    shell.last_execution_succeeded = False
    shell.showtraceback((type(error), error, None))
