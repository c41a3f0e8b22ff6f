"""The dashboard's action forms: review a finding, allow a global, justify a read, export.

Each form is a small box of widgets plus the handler of its button. A form's
button stays disabled until a reason is typed (and, for a dangerous pickle
global, until the confirmation is ticked); a change to the policy file is
shown as a diff first and written only by a second click. The handlers call
:mod:`mlsecops_jupyter.review.actions` (and the panel's provenance export), which
record every decision in the audit log with who made it and why; the outcome
or the error goes to the form's result line, never into a traceback.

Handlers run on the kernel's main thread (a click arrives as a comm message),
like the rest of the widget updates.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import ipywidgets as widgets

from mlsecops_jupyter.dashboard.html_sections import diff_html, result_html
from mlsecops_jupyter.dashboard.view_model import (
    PendingJustification,
    PickleChoice,
    PiiChoice,
    ProvenanceView,
)
from mlsecops_jupyter.session import Session

AfterAction = Callable[[], None]

_REASON_PLACEHOLDER = "why (required; stored in the audit log with your name)"
_HIDDEN = "none"
_SHOWN = ""


def _reason_box() -> widgets.Text:
    return widgets.Text(
        description="Reason",
        placeholder=_REASON_PLACEHOLDER,
        continuous_update=True,
        layout=widgets.Layout(width="100%"),
        style={"description_width": "6em"},
    )


def _has_text(text: widgets.Text) -> bool:
    return bool(str(text.value).strip())


def set_options(selector: Any, options: Sequence[tuple[str, Any]]) -> None:
    """New options for a selection widget, keeping the user's choice while it is offered."""
    options = tuple(options)
    if tuple(selector.options) == options:
        return
    kept = selector.value
    values = [value for _, value in options]
    # Setting options selects the first one (or none when the list was empty).
    selector.options = options
    if kept in values:
        selector.value = kept
    elif options and selector.index is None:
        selector.index = 0


def show(widget: widgets.Widget, visible: bool) -> None:
    layout = widget.layout
    wanted = _SHOWN if visible else _HIDDEN
    if layout.display != wanted:
        layout.display = wanted


class Form:
    """What every form has: a session, a result line, and a way to run an action safely."""

    def __init__(self, session: Session, after_action: AfterAction) -> None:
        self.session = session
        self._after_action = after_action
        self.enabled = True
        self.result = widgets.HTML(value="")
        self.result.add_class("mlsecops-result")

    def set_enabled(self, enabled: bool) -> None:
        self.enabled = enabled
        self.refresh()

    def refresh(self) -> None:
        """Enable or disable buttons for the form's current inputs."""

    def _run(
        self,
        action: Callable[[], tuple[str, Sequence[str], Sequence[str]]],
        user_errors: tuple[type[Exception], ...] = (),
    ) -> bool:
        """Run ``action`` (message, written paths, detail lines); show its outcome."""
        from mlsecops_jupyter.review.actions import ReviewError

        refusals: tuple[type[Exception], ...] = (ReviewError, *user_errors)
        try:
            message, paths, lines = action()
        except refusals as error:
            # A refusal that says what to do: nothing was changed.
            self.result.value = result_html(False, str(error))
            return False
        except Exception as error:
            # The form says what went wrong; the audit log keeps where.
            self.session.record_failure("dashboard", error)
            self.result.value = result_html(False, f"failed: {type(error).__name__}: {error}")
            return False
        finally:
            self._after_action()
        self.result.value = result_html(True, message, paths, lines)
        return True


class PolicyForm(Form):
    """A form whose action can also write the policy file: diff first, then a second click."""

    apply_label = "Write policy file"

    def __init__(self, session: Session, after_action: AfterAction) -> None:
        super().__init__(session, after_action)
        self.preview = widgets.HTML(value="")
        self.apply = widgets.Button(description=self.apply_label, button_style="warning")
        self.apply.on_click(lambda button: self._write())
        self.proposed: Any = None  # the PolicyChange shown, written as shown

    def _propose(self, propose: Callable[[], Any]) -> None:
        def preview() -> tuple[str, Sequence[str], Sequence[str]]:
            change = propose()
            self.proposed = change
            self.preview.value = diff_html(change.diff, change.label or str(change.path))
            show(self.apply, True)
            label = change.label or change.path
            if not change.diff:
                return f"{label} already says this: writing it changes nothing", (), ()
            return f"check the change to {label} below, then write it", (), ()

        self._run(preview)

    def _reset_preview(self) -> None:
        # What was shown is no longer what would be written.
        self.proposed = None
        self.preview.value = ""
        show(self.apply, False)

    def _write(self) -> None:
        """Write the change shown (the subclass's action with ``change=self.proposed``)."""


# --- personal data ------------------------------------------------------------------------------


class PiiReviewForm(PolicyForm):
    """Mark a personal-data finding as a false positive or as accepted."""

    apply_label = "Write policy file and record review"

    def __init__(self, session: Session, after_action: AfterAction) -> None:
        super().__init__(session, after_action)
        wide = widgets.Layout(width="100%")
        labels = {"description_width": "6em"}
        self.finding = widgets.Dropdown(
            options=(), value=None, description="Finding", layout=wide, style=labels
        )
        self.verdict = widgets.ToggleButtons(
            options=(("False positive", "false_positive"), ("Accepted", "accepted")),
            value=None,
            description="Verdict",
            style=labels,
            tooltips=(
                "the column holds no personal data: stop reporting it",
                "the column holds personal data and that is fine here: stop reporting it",
            ),
        )
        self.scope = widgets.RadioButtons(
            options=(
                ("this column of this frame", "variable"),
                ("this column name in the whole project", "project"),
            ),
            value="variable",
            description="For",
            style=labels,
        )
        self.write_policy = widgets.Checkbox(
            value=False,
            description="also write it to the policy file (the change is shown first)",
            indent=False,
            layout=wide,
        )
        self.reason = _reason_box()
        self.submit = widgets.Button(description="Record review", button_style="primary")
        self.submit.add_class("mlsecops-review-pii")
        self.apply.add_class("mlsecops-review-pii-apply")
        self.box = widgets.VBox(
            [
                self.finding,
                self.verdict,
                self.scope,
                self.write_policy,
                self.reason,
                widgets.HBox([self.submit, self.apply]),
                self.preview,
            ]
        )
        self.box.add_class("mlsecops-form-pii")
        for control in (self.finding, self.verdict, self.scope, self.write_policy, self.reason):
            control.observe(self._changed, names="value")
        self.submit.on_click(self._on_submit)
        self._reset_preview()

    def update(self, choices: Sequence[PiiChoice]) -> None:
        set_options(self.finding, [(c.label, (c.variable, c.column)) for c in choices])
        show(self.box, bool(choices))
        self.refresh()

    def refresh(self) -> None:
        ready = (
            self.enabled
            and self.finding.value is not None
            and self.verdict.value is not None
            and _has_text(self.reason)
        )
        self.submit.disabled = not ready
        self.submit.description = (
            "Preview policy change" if self.write_policy.value else "Record review"
        )
        self.apply.disabled = not ready

    def _changed(self, change: Any) -> None:
        self._reset_preview()
        self.refresh()

    def _arguments(self) -> dict[str, Any]:
        variable, column = self.finding.value
        return {
            "column": column,
            "variable": variable,
            "verdict": self.verdict.value,
            "reason": str(self.reason.value),
            "scope": self.scope.value,
        }

    def _on_submit(self, button: Any = None) -> None:
        from mlsecops_jupyter.review.actions import propose_pii_policy_change

        if self.finding.value is None:
            return
        arguments = self._arguments()
        if self.write_policy.value:
            self._propose(lambda: propose_pii_policy_change(self.session, **arguments))
        else:
            self._record(arguments, change=None)

    def _write(self) -> None:
        if self.finding.value is not None and self.proposed is not None:
            self._record(self._arguments(), change=self.proposed)

    def _record(self, arguments: dict[str, Any], *, change: Any) -> None:
        from mlsecops_jupyter.review.actions import review_pii

        def record() -> tuple[str, Sequence[str], Sequence[str]]:
            outcome = review_pii(
                self.session, write_policy=change is not None, change=change, **arguments
            )
            written = [str(outcome.policy_change.path)] if outcome.policy_change else []
            return outcome.message, written, ()

        if self._run(record):
            self.reason.value = ""
            self.verdict.value = None
            self.write_policy.value = False
        self._reset_preview()
        self.refresh()


# --- pickles ----------------------------------------------------------------------------------


class PickleAllowForm(PolicyForm):
    """Allow a pickle global that was warned about or blocked."""

    apply_label = "Write policy file and allow"

    def __init__(self, session: Session, after_action: AfterAction) -> None:
        super().__init__(session, after_action)
        wide = widgets.Layout(width="100%")
        labels = {"description_width": "6em"}
        self._choices: dict[str, PickleChoice] = {}
        self.qualified = widgets.Dropdown(
            options=(), value=None, description="Global", layout=wide, style=labels
        )
        self.danger = widgets.HTML(value="")
        self.confirm = widgets.Checkbox(value=False, description="", indent=False, layout=wide)
        self.confirm.add_class("mlsecops-confirm-dangerous")
        self.scope = widgets.ToggleButtons(
            options=(("this session", "session"), ("the policy file", "policy")),
            value="session",
            description="Allow in",
            style=labels,
        )
        self.reason = _reason_box()
        self.submit = widgets.Button(description="Allow for this session", button_style="primary")
        self.submit.add_class("mlsecops-allow-pickle")
        self.apply.add_class("mlsecops-allow-pickle-apply")
        self.box = widgets.VBox(
            [
                self.qualified,
                self.danger,
                self.confirm,
                self.scope,
                self.reason,
                widgets.HBox([self.submit, self.apply]),
                self.preview,
            ]
        )
        self.box.add_class("mlsecops-form-pickle")
        for control in (self.qualified, self.confirm, self.scope, self.reason):
            control.observe(self._changed, names="value")
        self.submit.on_click(self._on_submit)
        self._reset_preview()
        self._show_danger()

    def update(self, choices: Sequence[PickleChoice]) -> None:
        self._choices = {c.qualified: c for c in choices}
        set_options(self.qualified, [(c.label, c.qualified) for c in choices])
        show(self.box, bool(choices))
        self._show_danger()
        self.refresh()

    @property
    def selected(self) -> PickleChoice | None:
        value = self.qualified.value
        return self._choices.get(value) if isinstance(value, str) else None

    def refresh(self) -> None:
        choice = self.selected
        confirmed = choice is not None and (not choice.dangerous or bool(self.confirm.value))
        ready = self.enabled and confirmed and _has_text(self.reason)
        self.submit.disabled = not ready
        self.submit.description = (
            "Preview policy change" if self.scope.value == "policy" else "Allow for this session"
        )
        self.apply.disabled = not ready

    def _show_danger(self) -> None:
        choice = self.selected
        if choice is not None and choice.dangerous:
            self.danger.value = result_html(
                False, f"{choice.qualified} is dangerous: it {choice.dangerous}"
            )
            self.confirm.description = (
                f"I understand that allowing {choice.qualified} lets a pickle run code "
                "in this kernel"
            )
        else:
            self.danger.value = ""
        show(self.confirm, choice is not None and choice.dangerous is not None)

    def _changed(self, change: Any) -> None:
        if change["owner"] is self.qualified:
            self.confirm.value = False
            self._show_danger()
        self._reset_preview()
        self.refresh()

    def _confirmed(self, choice: PickleChoice) -> bool:
        return bool(choice.dangerous and self.confirm.value)

    def _on_submit(self, button: Any = None) -> None:
        from mlsecops_jupyter.review.actions import propose_pickle_policy_change

        choice = self.selected
        if choice is None:
            return
        if self.scope.value == "policy":
            reason, confirmed = str(self.reason.value), self._confirmed(choice)
            self._propose(
                lambda: propose_pickle_policy_change(
                    self.session, choice.qualified, reason=reason, confirm_dangerous=confirmed
                )
            )
        else:
            self._allow(choice, change=None)

    def _write(self) -> None:
        choice = self.selected
        if choice is not None and self.proposed is not None:
            self._allow(choice, change=self.proposed)

    def _allow(self, choice: PickleChoice, *, change: Any) -> None:
        from mlsecops_jupyter.review.actions import allow_pickle_global

        reason, confirmed = str(self.reason.value), self._confirmed(choice)

        def allow() -> tuple[str, Sequence[str], Sequence[str]]:
            outcome = allow_pickle_global(
                self.session,
                choice.qualified,
                reason=reason,
                scope="policy" if change is not None else "session",
                confirm_dangerous=confirmed,
                change=change,
            )
            written = [str(outcome.policy_change.path)] if outcome.policy_change else []
            return outcome.message, written, ()

        if self._run(allow):
            self.reason.value = ""
            self.confirm.value = False
        self._reset_preview()
        self.refresh()


# --- datasets -------------------------------------------------------------------------------


class JustifyForm(Form):
    """Record why a read that a ``require_justification`` rule stopped is needed."""

    def __init__(self, session: Session, after_action: AfterAction) -> None:
        super().__init__(session, after_action)
        self.rule = widgets.Dropdown(
            options=(),
            value=None,
            description="Waiting",
            layout=widgets.Layout(width="100%"),
            style={"description_width": "6em"},
        )
        self.reason = _reason_box()
        self.submit = widgets.Button(description="Record justification", button_style="primary")
        self.submit.add_class("mlsecops-justify")
        self.box = widgets.VBox([self.rule, self.reason, self.submit])
        self.box.add_class("mlsecops-form-justify")
        for control in (self.rule, self.reason):
            control.observe(lambda change: self.refresh(), names="value")
        self.submit.on_click(self._on_submit)

    def update(self, pending: Sequence[PendingJustification]) -> None:
        set_options(self.rule, [(p.label, p.rule) for p in pending])
        show(self.box, bool(pending))
        self.refresh()

    def refresh(self) -> None:
        self.submit.disabled = not (
            self.enabled and self.rule.value is not None and _has_text(self.reason)
        )

    def _on_submit(self, button: Any = None) -> None:
        from mlsecops_jupyter.review.actions import justify_dataset

        rule = self.rule.value
        if rule is None:
            return
        reason = str(self.reason.value)

        def justify() -> tuple[str, Sequence[str], Sequence[str]]:
            outcome = justify_dataset(self.session, reason, rule=int(rule))
            return f"{outcome.message} Run the cell that read it again.", (), ()

        if self._run(justify):
            self.reason.value = ""
        self.refresh()


# --- provenance ------------------------------------------------------------------------------


class ExportForm(Form):
    """Export the signed provenance record of a model file; lists the files written."""

    def __init__(self, session: Session, after_action: AfterAction) -> None:
        super().__init__(session, after_action)
        labels = {"description_width": "6em"}
        self.model = widgets.Combobox(
            options=(),
            placeholder="the model file, e.g. outputs/model.joblib",
            description="Model file",
            ensure_option=False,
            layout=widgets.Layout(width="100%"),
            style=labels,
        )
        self.out_dir = widgets.Text(value="provenance", description="Write to", style=labels)
        self.submit = widgets.Button(description="Export provenance", button_style="primary")
        self.submit.add_class("mlsecops-export")
        self.box = widgets.VBox([self.model, self.out_dir, self.submit])
        self.box.add_class("mlsecops-form-export")
        for control in (self.model, self.out_dir):
            control.observe(lambda change: self.refresh(), names="value")
        self.submit.on_click(self._on_submit)

    def update(self, view: ProvenanceView) -> None:
        options = tuple(view.model_files)
        if tuple(self.model.options) != options:
            self.model.options = options
        if not str(self.model.value).strip() and options:
            self.model.value = options[0]
        self.refresh()

    def refresh(self) -> None:
        self.submit.disabled = not (
            self.enabled and _has_text(self.model) and _has_text(self.out_dir)
        )

    def _on_submit(self, button: Any = None) -> None:
        from mlsecops_jupyter import channel

        request = {
            "model_paths": [str(self.model.value).strip()],
            "out_dir": str(self.out_dir.value).strip(),
        }

        def export() -> tuple[str, Sequence[str], Sequence[str]]:
            # The panel's export, verification included: one implementation, two doors.
            reply = channel.export(self.session, request)
            if reply.get("type") == "error":
                raise RuntimeError(str(reply.get("message")))
            verified = reply.get("verified")
            state = {True: "verified", False: "NOT verified", None: "not checked"}[verified]
            return (
                f"provenance written ({state})",
                [str(p) for p in reply.get("paths") or ()],
                [str(line) for line in reply.get("verification") or ()],
            )

        # A wrong path or out_dir is the user's to fix, not a guardrail failure.
        self._run(export, user_errors=(OSError, ValueError))
