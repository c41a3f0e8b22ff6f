"""Classifier evidence gathered in parts (one per Spark partition): shipped safely, then merged.

A Spark executor matches the values of its partition with the classifier's own
accumulation step (:func:`~.classifier.tally_cells`, :func:`~.classifier.tally_free_text`),
the parts of a column are merged on an executor, and the driver decides once with
:func:`~.classifier.decide_cells` / :func:`~.classifier.decide_free_text`.

What leaves the executor that read the values is made safe here, by
construction, for every field of the evidence (also fields added to the
classifier later):

- counts (``int``, ``bool``) as they are;
- sets of values (distinct values, last words, ...) as keyed BLAKE2b digests
  (6 bytes) under a random key made for one scan and never stored: distinct
  values can be counted, not read. Only the :data:`SET_CAP` smallest digests
  are kept: the union of such "bottom-k" sets is the bottom-k of the union, so
  a merged set counts ``min(distinct values, SET_CAP)`` exactly, and the
  classifier compares no set size with more than 2,000;
- lists of values (examples) masked (:func:`~.masking.mask`) with the entity
  they are examples of;
- ``Counter`` fields whose keys are recognizer pattern names, and the
  per-entity ``tallies`` dictionary, by their keys.

Anything else (a plain string, another dictionary) is refused
(:class:`UnsafeEvidence`): a new kind of field must be taught here before a
Spark full scan ships it. Merging adds counts, unites sets and keeps the first
:data:`~.classifier.MAX_EXAMPLES` distinct masked examples.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import secrets
from collections import Counter
from typing import Any

from mlsecops_jupyter.pii import classifier
from mlsecops_jupyter.pii.classifier import MAX_EXAMPLES, CellEvidence
from mlsecops_jupyter.pii.masking import mask

SET_CAP = 2000  # the classifier's largest cap on a set of distinct values (GOODS_DISTINCT_CAP)
# Dictionary fields whose keys are names (recognizer patterns, entity types), not values.
_NAMED_KEYS = frozenset({"patterns", "tallies"})
# The entity an example list of a statistics class is masked as.
_EXAMPLE_ENTITY = {
    "_NameShapeStats": "PERSON",
    "_PlaceStats": "LOCATION",
    "_WordCombinations": "PERSON",
}


class UnsafeEvidence(TypeError):
    """A field of the classifier's evidence this module does not know how to ship safely."""


def new_salt() -> bytes:
    return secrets.token_bytes(16)


def _digest(value: Any, salt: bytes) -> str:
    return hashlib.blake2b(str(value).encode("utf-8"), key=salt, digest_size=6).hexdigest()


def _bottom(values: set[Any]) -> set[Any]:
    return values if len(values) <= SET_CAP else set(sorted(values)[:SET_CAP])


# --- the executor that read the values: evidence -> JSON-safe -------------------------------


def shippable(evidence: Any, salt: bytes, entity: str = "") -> dict[str, Any]:
    """``evidence`` (a dataclass of the classifier) as JSON-ready data: digests and masks only."""
    if not dataclasses.is_dataclass(evidence) or isinstance(evidence, type):
        raise UnsafeEvidence(f"not classifier evidence: {type(evidence).__name__}")
    entity = _EXAMPLE_ENTITY.get(type(evidence).__name__, entity)
    return {
        field.name: _field_value(field.name, getattr(evidence, field.name), salt, entity)
        for field in dataclasses.fields(evidence)
    }


def _field_value(name: str, value: Any, salt: bytes, entity: str) -> Any:
    if isinstance(value, (bool, int, float)) or value is None:
        return value
    if isinstance(value, (set, frozenset)):
        return sorted(_bottom({_digest(v, salt) for v in value}))
    if isinstance(value, list):
        return [mask(v, entity) if isinstance(v, str) else v for v in value]
    if isinstance(value, dict) and name in _NAMED_KEYS:
        return {
            str(key): (
                shippable(item, salt, str(key)) if dataclasses.is_dataclass(item) else int(item)
            )
            for key, item in value.items()
        }
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return shippable(value, salt, entity)
    raise UnsafeEvidence(f"evidence field {name!r} ({type(value).__name__}) cannot be shipped")


def free_text_shippable(tallies: dict[str, Any], salt: bytes) -> dict[str, Any]:
    shipped: dict[str, Any] = _field_value("tallies", tallies, salt, "")
    return shipped


# --- shipped JSON <-> evidence, merged ----------------------------------------------------------


def cell_evidence(data: dict[str, Any]) -> CellEvidence:
    """Shipped cell evidence as the classifier's object (examples masked, sets digested)."""
    evidence: CellEvidence = _filled(CellEvidence(), data)
    evidence.masked = True
    return evidence


def free_text_tallies(data: dict[str, Any]) -> dict[str, Any]:
    return {entity: _filled(classifier._Tally(), item) for entity, item in data.items()}


def plain(evidence: Any) -> Any:
    """Already shipped (masked, digested) evidence as JSON-ready data again, unchanged."""
    if dataclasses.is_dataclass(evidence) and not isinstance(evidence, type):
        return {f.name: plain(getattr(evidence, f.name)) for f in dataclasses.fields(evidence)}
    if isinstance(evidence, (set, frozenset)):
        return sorted(evidence)
    if isinstance(evidence, dict):
        return {str(k): plain(v) for k, v in evidence.items()}
    if isinstance(evidence, list):
        return list(evidence)
    return evidence


def _filled(template: Any, data: dict[str, Any]) -> Any:
    """``template`` (a fresh classifier dataclass) with the fields of ``data``."""
    for field in dataclasses.fields(template):
        if field.name not in data:
            continue
        current = getattr(template, field.name)
        raw = data[field.name]
        if field.name == "tallies":
            value: Any = free_text_tallies(raw)
        elif isinstance(current, Counter):
            value = Counter({str(k): int(v) for k, v in raw.items()})
        elif isinstance(current, (set, frozenset)):
            value = set(raw)
        elif isinstance(current, list):
            value = list(raw)
        elif dataclasses.is_dataclass(current) and not isinstance(current, type):
            value = _filled(current, raw)
        else:
            value = raw
        setattr(template, field.name, value)
    return template


def merge(into: Any, part: Any) -> Any:
    """``part`` added to ``into`` (same class): counts summed, sets united, examples kept."""
    for field in dataclasses.fields(into):
        setattr(into, field.name, _merged(getattr(into, field.name), getattr(part, field.name)))
    return into


def _merged(a: Any, b: Any) -> Any:
    if isinstance(a, bool):
        return a or b
    if isinstance(a, (int, float)):
        return a + b
    if isinstance(a, Counter):
        return a + b
    if isinstance(a, set):
        return _bottom(a | b)
    if isinstance(a, list):
        return (a + [x for x in b if x not in a])[:MAX_EXAMPLES]
    if isinstance(a, dict):
        out = dict(a)
        for key, item in b.items():
            out[key] = merge(out[key], item) if key in out else item
        return out
    if dataclasses.is_dataclass(a) and not isinstance(a, type):
        return merge(a, b)
    return a


def merge_tallies(into: dict[str, Any], part: dict[str, Any]) -> dict[str, Any]:
    merged: dict[str, Any] = _merged(into, part)
    return merged


def dumps(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)
