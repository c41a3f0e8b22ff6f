"""The dashboard's widget tree: a header, one collapsible section per panel section.

Each section is an :class:`ipywidgets.Accordion` holding the section's table (an
HTML widget rendered from the view model) and the section's action form.
:meth:`DashboardWidgets.render` sets only the values of the sections it is
given; ipywidgets sends a value to the front end only when it changed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import ipywidgets as widgets

from mlsecops_jupyter.dashboard import html_sections
from mlsecops_jupyter.dashboard.forms import (
    ExportForm,
    Form,
    JustifyForm,
    PickleAllowForm,
    PiiReviewForm,
)
from mlsecops_jupyter.dashboard.view_model import (
    DatasetsView,
    Header,
    PicklesView,
    PiiView,
    ProvenanceView,
    Section,
)
from mlsecops_jupyter.session import Session

SectionViews = Mapping[Section, object]


class DashboardWidgets:
    """The widgets of one live dashboard, and the forms acting on the session."""

    def __init__(self, session: Session, after_action: Callable[[], None]) -> None:
        self.header = widgets.HTML(value="")
        self.header.add_class("mlsecops-dashboard-header")
        self.tables: dict[Section, widgets.HTML] = {
            name: widgets.HTML(value="") for name in ("datasets", "pii", "pickles", "provenance")
        }
        self.justify = JustifyForm(session, after_action)
        self.review = PiiReviewForm(session, after_action)
        self.allow = PickleAllowForm(session, after_action)
        self.export = ExportForm(session, after_action)
        self.forms: tuple[Form, ...] = (self.justify, self.review, self.allow, self.export)
        self.sections: dict[Section, widgets.Accordion] = {
            "datasets": self._section(
                "datasets", [self.tables["datasets"], self.justify.box, self.justify.result]
            ),
            "pii": self._section("pii", [self.tables["pii"], self.review.box, self.review.result]),
            "pickles": self._section(
                "pickles", [self.tables["pickles"], self.allow.box, self.allow.result]
            ),
            "provenance": self._section(
                "provenance", [self.tables["provenance"], self.export.box, self.export.result]
            ),
        }
        self.root = widgets.VBox([self.header, *self.sections.values()])
        self.root.add_class("mlsecops-dashboard")

    @staticmethod
    def _section(name: str, children: list[widgets.Widget]) -> widgets.Accordion:
        body = widgets.VBox(children)
        accordion = widgets.Accordion(children=[body], titles=(name,), selected_index=0)
        accordion.add_class(f"mlsecops-section-{name}")
        return accordion

    def render(self, views: SectionViews) -> None:
        """Show these sections' new views (the others keep theirs)."""
        for name, view in views.items():
            if name == "header" and isinstance(view, Header):
                self._header(view)
            elif name == "datasets" and isinstance(view, DatasetsView):
                self.tables["datasets"].value = html_sections.datasets_html(view)
                waiting = (
                    f", {len(view.pending)} waiting for a justification" if view.pending else ""
                )
                self._title(
                    "datasets", f"Datasets accessed ({len(view.rows) + view.left_out}{waiting})"
                )
                self.justify.update(view.pending)
            elif name == "pii" and isinstance(view, PiiView):
                self.tables["pii"].value = html_sections.pii_html(view)
                frames = _count(len(view.frames) + view.left_out, "frame")
                to_review = f", {_count(len(view.choices), 'column')} to review"
                self._title(
                    "pii",
                    f"Personal data in frames ({frames}{to_review if view.choices else ''})",
                )
                self.review.update(view.choices)
            elif name == "pickles" and isinstance(view, PicklesView):
                self.tables["pickles"].value = html_sections.pickles_html(view)
                blocked = sum(1 for r in view.rows if r.status == "blocked")
                flagged = f", {blocked} blocked" if blocked else ""
                self._title("pickles", f"Pickle and model loads ({len(view.rows)}{flagged})")
                self.allow.update(view.choices)
            elif name == "provenance" and isinstance(view, ProvenanceView):
                self.tables["provenance"].value = html_sections.provenance_html(view)
                self._title("provenance", f"Provenance ({len(view.exports)} exported)")
                self.export.update(view)

    def _header(self, header: Header) -> None:
        self.header.value = html_sections.header_html(header)
        for form in self.forms:
            if form.enabled != header.on:
                form.set_enabled(header.on)

    def _title(self, name: Section, title: str) -> None:
        accordion = self.sections[name]
        if accordion.titles != (title,):
            accordion.titles = (title,)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"
