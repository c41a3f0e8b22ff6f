"""The short human summary of a provenance statement, printed by export and verify."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Mapping
from typing import Any

from mlsecops_jupyter.display import Table


@dataclasses.dataclass(frozen=True)
class ProvenanceSummary:
    models: list[tuple[str, str]]  # (name, sha256)
    datasets: list[tuple[str, str | None, str, list[str]]]  # (uri, sha256, reader, PII)
    pii_entities: list[str]
    loads: list[tuple[str, str]]  # (path, verdict)
    warnings: Counter[str]
    signer: str
    who: str
    notebook: str
    audit_head: str | None
    # Known-dangerous pickle globals allowed by explicit override; what people reviewed.
    overrides: list[str] = dataclasses.field(default_factory=list)
    reviews: list[str] = dataclasses.field(default_factory=list)

    @classmethod
    def of(cls, statement: Mapping[str, Any], key_id: str | None = None) -> ProvenanceSummary:
        predicate = statement.get("predicate") or {}
        build = predicate.get("buildDefinition") or {}
        internal = build.get("internalParameters") or {}
        external = build.get("externalParameters") or {}
        dependencies = build.get("resolvedDependencies") or []
        datasets, loads = [], []
        for dep in dependencies:
            notes = dep.get("annotations") or {}
            if notes.get("kind") == "dataset":
                datasets.append(
                    (
                        str(dep.get("uri")),
                        (dep.get("digest") or {}).get("sha256"),
                        str(notes.get("reader")),
                        list(notes.get("piiEntities") or []),
                    )
                )
            elif notes.get("kind") == "loaded-model":
                loads.append((str(dep.get("name")), str(notes.get("verdict"))))
        identity = internal.get("identity") or {}
        user = identity.get("user") or "?"
        if identity.get("jupyterhub_user") and identity["jupyterhub_user"] != user:
            user = f"{user} (hub: {identity['jupyterhub_user']})"
        signer = internal.get("signer") or {}
        audit = internal.get("auditLog") or {}
        notebook = external.get("notebook") or {}
        return cls(
            models=[
                (str(s.get("name")), str((s.get("digest") or {}).get("sha256")))
                for s in statement.get("subject") or []
            ],
            datasets=datasets,
            pii_entities=list((internal.get("personalData") or {}).get("entities") or []),
            loads=loads,
            warnings=Counter(str(w.get("kind")) for w in internal.get("warnings") or []),
            signer=f"key {key_id or signer.get('keyId')} ({signer.get('origin', '?')})",
            who=f"{user}@{identity.get('host', '?')}",
            notebook=f"{notebook.get('path') or 'unknown'} ({notebook.get('status', '?')})",
            audit_head=audit.get("head"),
            overrides=[
                f"{o.get('global')} ({o.get('origin')})"
                for o in internal.get("dangerousPickleOverrides") or []
            ],
            reviews=[_review_line(r) for r in internal.get("reviews") or []],
        )

    def table(self) -> Table:
        pii = ", ".join(self.pii_entities) or "none found"
        unsafe = ", ".join(f"{k} x{n}" for k, n in sorted(self.warnings.items())) or "none"
        rows: list[tuple[str, Any]] = [
            ("models", [f"{n} sha256:{d[:16]}" for n, d in self.models]),
            (
                "datasets",
                [
                    f"{u} ({r}, {('sha256:' + s[:12]) if s else 'no digest'}"
                    + (f", PII: {'/'.join(p)}" if p else "")
                    + ")"
                    for u, s, r, p in self.datasets
                ]
                or "none recorded",
            ),
            ("personal data", pii),
            ("models/pickles loaded", [f"{p}: {v}" for p, v in self.loads] or "none"),
            ("warnings", unsafe),
            ("dangerous pickle overrides", self.overrides or "none"),
            ("reviews", self.reviews or "none"),
            ("run by", self.who),
            ("notebook", self.notebook),
            ("signer", self.signer),
            ("audit log head", self.audit_head),
        ]
        return Table("Provenance", ["", ""], rows)

    def __str__(self) -> str:
        lines = [
            "models:        " + "; ".join(f"{n} (sha256:{d[:16]})" for n, d in self.models),
            f"datasets:      {len(self.datasets)}",
        ]
        for uri, digest, reader, pii in self.datasets:
            shown = f"sha256:{digest[:16]}" if digest else "NO DIGEST"
            extra = f", PII: {', '.join(pii)}" if pii else ""
            lines.append(f"  - {uri} ({reader}, {shown}{extra})")
        lines.append(f"personal data: {', '.join(self.pii_entities) or 'none found'}")
        if self.loads:
            lines.append("loaded:        " + "; ".join(f"{p}: {v}" for p, v in self.loads))
        unsafe = ", ".join(f"{k} x{n}" for k, n in sorted(self.warnings.items()))
        lines.append(f"warnings:      {unsafe or 'none'}")
        if self.overrides:
            lines.append(
                "OVERRIDES:     dangerous pickle globals allowed: " + "; ".join(self.overrides)
            )
        for review in self.reviews:
            lines.append(f"reviewed:      {review}")
        lines.append(f"run by:        {self.who}, notebook {self.notebook}")
        lines.append(f"signer:        {self.signer}")
        lines.append(f"audit head:    {self.audit_head or 'none'}")
        return "\n".join(lines)


def _review_line(review: Mapping[str, Any]) -> str:
    """One review, as the summary shows it: what, the verdict, the reason, by whom."""
    if review.get("kind") == "review.pickle_allowed":
        what = f"allowed pickle global {review.get('global')}"
        if review.get("dangerous"):
            what += " (dangerous)"
    else:
        column = review.get("column")
        what = (
            f"{review.get('variable')}.{column}" if review.get("variable") else f"column {column}"
        )
        what += f" {str(review.get('verdict')).replace('_', ' ')}"
    return f"{what}: {review.get('reason')} (by {review.get('by')})"
