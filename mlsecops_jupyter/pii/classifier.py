"""Per-column decision: does this column hold personal data, and of which kind?

Evidence, not one stray match:

- structured columns: every sampled cell is matched whole against presidio's
  patterns and validators (and the name/address word lists); an entity is
  found when the Wilson 95% lower bound of its share of matching cells passes
  a threshold, lower when the column name suggests that entity, higher when
  the name says the column is *about* personal data (``email_sent``);
- free-text columns: presidio's analyzer runs on the sampled texts, and an
  entity is found when at least two distinct values of it turn up, so an
  e-mail in 1% of support tickets is still found;
- dates count only as dates of birth: by name, or by date-only values spread
  over decades of past years.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import re
import statistics
from collections import Counter
from collections.abc import Callable, Collection

from mlsecops_jupyter.pii import recognizers
from mlsecops_jupyter.pii.column_names import NameSignal, name_signal
from mlsecops_jupyter.pii.frames import ColumnSample
from mlsecops_jupyter.pii.gazetteer import PARTICLES, TITLES, Gazetteer, fold, gazetteer
from mlsecops_jupyter.pii.masking import mask
from mlsecops_jupyter.pii.report import ColumnFinding, EntityEvidence

Z95 = 1.96
CHUNK = 100  # structured columns are matched in chunks; the decision may stop early
MAX_EXAMPLES = 3

# Lower bound of the matching share a structured column needs.
THRESHOLD_NAMED = 0.2  # the column name suggests the entity
THRESHOLD_VALIDATED = 0.45  # presidio's validator confirmed the matches (checksums, TLDs)
THRESHOLD_SHAPE = 0.6  # shape-only evidence (names, addresses, phone numbers)
THRESHOLD_NEGATIVE_NAME = 0.8  # "email_sent", "phone_model": about personal data, not holding it

# Free text: entities looked for, and the least presidio score that counts.
FREE_TEXT_ENTITIES: tuple[str, ...] = (
    "EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "IP_ADDRESS", "US_SSN",
    "UK_NINO", "ES_NIF", "ES_NIE", "IT_FISCAL_CODE",
)  # fmt: skip
NER_ENTITIES = ("PERSON", "LOCATION")
MIN_TEXT_SCORE = 0.4
MIN_TEXT_HITS = 2  # distinct values
MAX_ANALYZED_TEXTS = 400

# Patterns presidio itself rates below this only count when the name agrees
# (a bare 9-digit number is an SSN only in a column called ssn).
WEAK_PATTERN_SCORE = 0.3

_TOKEN = re.compile(r"[\s,;/]+")
_NAME_WORD = re.compile(r"^[^\W\d_][^\W\d_'\-.]*\.?$")
_POSTCODE = re.compile(
    r"^(?:\d{4,6}|\d{4}[A-Z]{2}|[A-Z]{1,2}\d[A-Z\d]?|\d[A-Z]{2}|\d{2}-\d{3}|[A-Z]{1,2}-\d{4,5})$"
)
# "<street> <house number>, <postcode> <town>" without a street-type word, as in
# Czech, Slovak, Scandinavian or Polish addresses ("Jandova 9, 611 74 Spálené Poříčí",
# "Nad Zámečkem 778/2a, 41409 Chotěboř"). Postcodes: 4-6 digits, 3+2 digits, 2-3 digits,
# an optional country prefix ("H-8406", "D-10115").
_STREET_NUMBER_POSTCODE = re.compile(
    r"^[^\W\d_][^\d,]{2,60}\s\d{1,5}[^\W\d_]?(?:/\d{1,5}[^\W\d_]?)?\.?,\s*"
    r"(?:[A-Z]{1,2}-)?(?:\d{4,6}|\d{3} \d{2}|\d{2}-\d{3})\s+[^\W\d_][^\d]{1,60}$"
)
# "<street> <house number>" or "<house number> <street>" with no street-type word
# ("Mozartova 1180", "U Kotynky 1", "16 Heath Lodge"): an address only where the
# column name says so (product lines and model names look the same).
_STREET_AND_NUMBER = re.compile(
    r"^(?:\d{1,5}[^\W\d_]?\s+[^\W\d_][^\d,]{1,60}"
    r"|[^\W\d_][^\d,]{1,60}?\s\d{1,5}[^\W\d_]?(?:/\d{1,5}[^\W\d_]?)?)$"
)
# A column of person names without a telling column name (``c1``): most cells are
# name-shaped (2-5 capitalised words, letters only), a fair share have a word in
# the name lists, the values are nearly all distinct, and so are the words at one
# end of them at least (unlike "Blue Chair", "Red Lamp": see _WordCombinations).
NAME_SHAPE_MIN_KNOWN = 0.2
NAME_SHAPE_MIN_DISTINCT = 0.8
NAME_SHAPE_MIN_WIDEST = 0.03
NAME_SHAPE_DISTINCT_CAP = 1000  # distinct values looked at: a full scan can list millions
# Goods named like people ("Rose Chair", "Otto Armchair"): see _WordCombinations.
GOODS_MIN_DISTINCT = 30
GOODS_MAX_LIST = 60
GOODS_DISTINCT_CAP = 2000
# Town names without a telling column name: see _PlaceStats.
PLACE_SHAPE_MIN_KNOWN = 0.3  # lower bound of the share of known places
PLACE_SHAPE_MIN_SHAPED = 0.9
PLACE_SHAPE_MIN_DISTINCT = 50
PLACE_SHAPE_DISTINCT_CAP = 1000


def wilson_lower(k: int, n: int, z: float = Z95) -> float:
    if n == 0:
        return 0.0
    p = k / n
    denom = 1 + z * z / n
    centre = p + z * z / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, (centre - spread) / denom)


def wilson_upper(k: int, n: int, z: float = Z95) -> float:
    if n == 0:
        return 1.0
    p = k / n
    denom = 1 + z * z / n
    centre = p + z * z / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return min(1.0, (centre + spread) / denom)


@dataclasses.dataclass
class _Tally:
    matches: int = 0
    validated: int = 0
    weak: int = 0  # matches only a weak pattern accepted
    patterns: Counter[str] = dataclasses.field(default_factory=Counter)
    examples: list[str] = dataclasses.field(default_factory=list)
    distinct: set[str] = dataclasses.field(default_factory=set)

    def add(
        self, value: str, pattern: str, *, validated: bool, weak: bool = False, count: int = 1
    ) -> None:
        self.matches += count
        self.validated += validated * count
        self.weak += weak * count
        self.patterns[pattern] += count
        if len(self.distinct) < 64:
            self.distinct.add(value)
        if len(self.examples) < MAX_EXAMPLES and value not in self.examples:
            self.examples.append(value)


# --- value tests without NER ------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _NameCell:
    """What one cell looks like as a person's name."""

    known: bool  # enough of its words are in the name lists, and none is a street word
    shaped: bool  # capitalised words, letters only
    words: tuple[str, ...]  # folded, without titles and particles


_NOT_A_NAME = _NameCell(known=False, shaped=False, words=())


def _person_like(text: str, gaz: Gazetteer) -> _NameCell:
    if len(text) > 60 or any(c.isdigit() for c in text) or "@" in text:
        return _NOT_A_NAME
    tokens = [t for t in _TOKEN.split(text) if t]
    # Titles and degrees ("Dr.", "Univ.Prof.", "B.Sc.") are not part of the name.
    core = [t for t in tokens if fold(t).strip(".") not in TITLES and "." not in t[:-1]]
    if not 1 <= len(core) <= 5 or not all(_NAME_WORD.match(t) for t in core):
        return _NOT_A_NAME
    words = [p for t in core for p in fold(t).strip(".'").split("-") if p]
    words = [w for w in words if w not in PARTICLES]
    if not words:
        return _NOT_A_NAME
    shaped = all(t[0].isupper() for t in core if fold(t) not in PARTICLES)
    known = sum(gaz.is_name_word(w) for w in words)
    # "Harley Street", "Rose Lane": a street, unless the street word is a surname too.
    street = any(gaz.is_street_word(w) and not gaz.is_name_word(w) for w in words)
    return _NameCell(known >= 1 and known * 2 >= len(words) and not street, shaped, tuple(words))


@dataclasses.dataclass
class _WordCombinations:
    """First and last words of the distinct multi-word values taken for names.

    A person's name pairs a first name with a surname, each out of hundreds or
    thousands. A product name pairs a word out of a few dozen ("Rose", "Otto",
    "Bosch") with another out of a few dozen ("Chair", "Armchair", "Kettle"). When
    the distinct values far outnumber the distinct words at both ends, and those
    words are few, the column freely combines two short lists: goods, not people.
    A customer list repeated over many orders has few distinct words too, but then
    it has no more distinct values than names either.
    """

    values: set[str] = dataclasses.field(default_factory=set)
    first: set[str] = dataclasses.field(default_factory=set)
    last: set[str] = dataclasses.field(default_factory=set)
    known_cells: int = 0  # multi-word cells the name lists counted as names (weighted)

    def add(self, text: str, cell: _NameCell, count: int) -> None:
        if len(cell.words) < 2:
            return
        self.known_cells += cell.known * count
        if len(self.values) < GOODS_DISTINCT_CAP and text not in self.values:
            self.values.add(text)
            self.first.add(cell.words[0])
            self.last.add(cell.words[-1])

    def are_goods(self) -> bool:
        distinct = len(self.values)
        widest = max(len(self.first), len(self.last))
        return (
            distinct >= GOODS_MIN_DISTINCT
            and distinct >= 2 * widest
            and (widest <= GOODS_MAX_LIST or widest * 10 <= distinct)
        )


@dataclasses.dataclass
class _PlaceStats:
    """Place-shaped cells, for city columns without a telling name.

    A column of town names holds many towns no list has (villages, places of
    countries the lists miss); what gives it away is that a fair share of its many
    distinct capitalised, digit-free values are known places, more than are known
    names. Everyday words, dishes, colours or brands are known places far less
    often (10-16% in the benchmark's negatives), or are a handful of values.
    """

    shaped: int = 0
    known: int = 0
    distinct: set[str] = dataclasses.field(default_factory=set)
    examples: list[str] = dataclasses.field(default_factory=list)

    def add(self, text: str, known: bool, count: int) -> None:
        if (
            len(text) > 60
            or not text[:1].isupper()
            or any(c.isdigit() for c in text)
            or len(_TOKEN.split(text)) > 5
        ):
            return
        self.shaped += count
        self.known += known * count
        if len(self.distinct) < PLACE_SHAPE_DISTINCT_CAP:
            self.distinct.add(text)
        if known and len(self.examples) < MAX_EXAMPLES and text not in self.examples:
            self.examples.append(text)

    def looks_like_places(self, n: int, known_names: int) -> bool:
        return (
            len(self.distinct) >= PLACE_SHAPE_MIN_DISTINCT
            and self.shaped >= PLACE_SHAPE_MIN_SHAPED * n
            and wilson_lower(self.known, n) >= PLACE_SHAPE_MIN_KNOWN
            and self.known > known_names
        )


def _address_like(text: str, gaz: Gazetteer) -> bool:
    if len(text) > 200:
        return False
    tokens = [t.strip(".,#") for t in _TOKEN.split(text) if t]
    has_number = any(any(c.isdigit() for c in t) for t in tokens)
    if not has_number or len(tokens) < 2:
        return False
    folded = [fold(t) for t in tokens]
    if any(gaz.is_street_word(w) for w in folded if not w.isdigit()):
        return True
    if _STREET_NUMBER_POSTCODE.match(text):
        return True
    has_postcode = any(_POSTCODE.match(t) for t in tokens)
    alpha = sum(t.isalpha() for t in tokens)
    return has_postcode and ("," in text or "\n" in text) and alpha >= 2


@dataclasses.dataclass
class _NameShapeStats:
    """Column statistics of the name-shaped cells, for columns without a telling name."""

    shaped: int = 0  # cells of 2-5 capitalised words, letters only, no street word
    known: int = 0  # ... of which with a word in the name lists
    distinct: set[str] = dataclasses.field(default_factory=set)
    first_words: set[str] = dataclasses.field(default_factory=set)
    last_words: set[str] = dataclasses.field(default_factory=set)
    examples: list[str] = dataclasses.field(default_factory=list)

    def add(self, text: str, known: bool, gaz: Gazetteer, count: int) -> None:
        words = [t for t in _TOKEN.split(text) if t]
        if not 2 <= len(words) <= 5:
            return
        folded = [fold(t).strip(".") for t in words]
        if any(gaz.is_street_word(w) for w in folded if w not in TITLES):
            return
        self.shaped += count
        self.known += known * count
        if len(self.distinct) < NAME_SHAPE_DISTINCT_CAP:
            self.distinct.add(text)
            self.first_words.add(folded[0])
            self.last_words.add(folded[-1])
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append(text)

    def looks_like_names(self, n: int) -> bool:
        if n < 20 or self.shaped < 10:
            return False
        # Nearly all distinct among up to 1000 values (a sample, or a full scan's
        # distinct values: then a large pool of values passes, a small one not), and
        # many distinct words at one end at least: given names or surnames, whichever
        # comes first (Hungarian "Nagy István"; Korean, Vietnamese or Slovak lists
        # with few surnames but many given names).
        widest = max(len(self.first_words), len(self.last_words))
        return (
            self.known >= NAME_SHAPE_MIN_KNOWN * self.shaped
            and len(self.distinct)
            >= NAME_SHAPE_MIN_DISTINCT * min(self.shaped, NAME_SHAPE_DISTINCT_CAP)
            and widest >= max(5, NAME_SHAPE_MIN_WIDEST * len(self.distinct))
        )


def _city_like(text: str, gaz: Gazetteer) -> bool:
    return len(text) <= 60 and fold(text) in gaz.cities


# --- the decision -----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ClassifierOptions:
    ignore_entities: Collection[str] = ()
    spacy_model: str | None = None
    early_stop: bool = True
    max_texts: int = MAX_ANALYZED_TEXTS  # free-text values given to presidio's analyzer
    progress: Callable[[int], object] | None = None  # called with values examined since last


def classify_column(column: ColumnSample, options: ClassifierOptions) -> ColumnFinding | None:
    signal = name_signal(column.name)
    column = in_judging_order(column)
    route = routes(column)
    if "dates" in route:
        return _date_of_birth(column, signal, options)
    if "cells" in route:
        finding = _classify_cells(column, signal, options)
        if finding is not None:
            return finding
    if "free_text" in route:
        return _classify_free_text(column, signal, options)
    return None


def routes(column: ColumnSample) -> tuple[str, ...]:
    """How ``column`` is judged: ("dates",), or "cells" and/or "free_text" in that order.

    Decided on the column's values (a sample): a Spark full scan decides it on
    the driver's sample, then matches every row on the executors.
    """
    if column.kind == "datetime" or (column.kind == "string" and _mostly_dates(column)):
        return ("dates",)
    if column.kind not in ("string", "integer", "binary", "nested") or not column.values:
        return ()
    values = column.values
    route: list[str] = []
    if not column.nested and not _is_free_text(values):
        route.append("cells")
    if column.kind in ("string", "binary", "nested") and (column.nested or _is_text(values)):
        route.append("free_text")
    return tuple(route)


def in_judging_order(column: ColumnSample) -> ColumnSample:
    """``column`` as the decision reads it: a sample's values spread out (:func:`_spread_out`).

    A Spark full scan routes and judges its driver-side sample through this too.
    """
    if column.counts is None and len(column.values) > CHUNK:
        return dataclasses.replace(column, values=_spread_out(column.values))
    return column


def _spread_out(values: list[str]) -> list[str]:
    """The sample in an order whose every prefix spans the whole frame.

    Samples come in row order; the decision looks at the first values first (the
    text/free-text test, the early stop after 100-200 cells). A column filled only
    in its second half (a sorted frame, ``df.loc[50_000:, "email"] = ...``) must
    not be judged on its first rows: take every k-th value, then the next ones.
    """
    step = max(1, len(values) // CHUNK)
    return [values[i] for start in range(step) for i in range(start, len(values), step)]


def _is_text(values: list[str]) -> bool:
    sample = values[:200]
    return statistics.median(len(v) for v in sample) >= 20 and (
        sum(v.count(" ") >= 2 for v in sample) * 2 >= len(sample)
    )


def _is_free_text(values: list[str]) -> bool:
    sample = values[:200]
    return statistics.median(len(v) for v in sample) >= 60


@dataclasses.dataclass
class CellEvidence:
    """All that matching a column's cells accumulates, before the decision.

    One object, so that evidence gathered in parts (a Spark full scan: one part
    per partition, see :mod:`.spark_full_scan`) is merged and then decided on
    once by :func:`decide_cells`, exactly as for a pandas column. Whatever the
    cell loop learns about a column belongs here.
    """

    n: int = 0
    tallies: dict[str, _Tally] = dataclasses.field(default_factory=dict)
    names: _NameShapeStats = dataclasses.field(default_factory=_NameShapeStats)
    combinations: _WordCombinations = dataclasses.field(default_factory=_WordCombinations)
    places: _PlaceStats = dataclasses.field(default_factory=_PlaceStats)
    known_names: int = 0
    # Merged from parts that masked their examples and hashed their distinct values.
    masked: bool = False


def is_categorical(column: ColumnSample) -> bool:
    # A handful of repeated values is a code or a category: only a validated
    # pattern (an e-mail, a card number) can make it personal, not word lists.
    return column.n_values >= 20 and len(set(column.values[:500])) < 5


def _classify_cells(
    column: ColumnSample, signal: NameSignal, options: ClassifierOptions
) -> ColumnFinding | None:
    categorical = is_categorical(column)
    found = tally_cells(column, signal, options, categorical=categorical)
    return decide_cells(column, found, signal, options, categorical=categorical)


def tally_cells(
    column: ColumnSample, signal: NameSignal, options: ClassifierOptions, *, categorical: bool
) -> CellEvidence:
    """Match the values of ``column``, each weighted by its count (may stop early)."""
    matchers = recognizers.cell_matchers()
    gaz = gazetteer()
    values = column.values
    weights = column.weights()
    numeric = column.kind == "integer"
    tallies: dict[str, _Tally] = {}
    names = _NameShapeStats()
    combinations = _WordCombinations()
    places = _PlaceStats()
    known_names = 0
    # "product", "brand": people's names in it are goods' names ("Otto Armchair").
    name_lists_count = not signal.names_goods
    n = column.filtered_out
    reported = 0
    for start in range(0, len(values), CHUNK):
        for text, w in zip(
            values[start : start + CHUNK], weights[start : start + CHUNK], strict=True
        ):
            n += w
            matched = _match_cell(text, matchers, numeric, signal, tallies, w)
            if matched or numeric or categorical:
                continue
            if "@" in text:
                continue
            cell = _person_like(text, gaz)
            known = cell.known and name_lists_count
            if cell.shaped:
                names.add(text, known, gaz, w)
            if known:
                known_names += w
                tallies.setdefault("PERSON", _Tally()).add(
                    text, "name gazetteer", validated=False, count=w
                )
            if known or cell.shaped:
                combinations.add(text, cell, w)
            is_place = False
            if _address_like(text, gaz):
                tallies.setdefault("LOCATION", _Tally()).add(
                    text, "address shape", validated=False, count=w
                )
            else:
                is_place = _city_like(text, gaz)
                places.add(text, is_place, w)
                if is_place:
                    tallies.setdefault("LOCATION", _Tally()).add(
                        text, "city gazetteer", validated=False, count=w
                    )
                elif signal.suggests("LOCATION"):
                    if cell.shaped or (text[:1].isupper() and not any(c.isdigit() for c in text)):
                        tallies.setdefault("LOCATION", _Tally()).add(
                            text, "place-shaped value", validated=False, count=w
                        )
                    elif _STREET_AND_NUMBER.match(text):
                        tallies.setdefault("LOCATION", _Tally()).add(
                            text, "street + house number", validated=False, count=w
                        )
            if cell.shaped and not cell.known and signal.suggests("PERSON"):
                tallies.setdefault("PERSON", _Tally()).add(
                    text, "name-shaped value", validated=False, count=w
                )
        if options.progress is not None and start % (CHUNK * 50) == 0:
            options.progress(n - reported)
            reported = n
        if options.early_stop and _decided(tallies, n):
            break
    if options.progress is not None and n > reported:
        options.progress(n - reported)
    return CellEvidence(n, tallies, names, combinations, places, known_names)


def decide_cells(
    column: ColumnSample,
    found: CellEvidence,
    signal: NameSignal,
    options: ClassifierOptions,
    *,
    categorical: bool,
) -> ColumnFinding | None:
    """The column's finding, if its evidence clears the threshold (same rule for every library)."""
    numeric = column.kind == "integer"
    tallies, n = found.tallies, found.n
    if not numeric and not categorical:
        _column_statistics(
            tallies, n, found.names, found.combinations, found.places, found.known_names
        )
    evidence = []
    for entity, tally in tallies.items():
        if entity in options.ignore_entities:
            continue
        counted = tally.matches - (0 if signal.suggests(entity) else tally.weak)
        if counted <= 0:
            continue
        lb = wilson_lower(counted, n)
        if lb < _threshold(entity, tally, signal, numeric):
            continue
        evidence.append((lb, entity, tally, counted))
    if not evidence:
        return None
    evidence.sort(key=lambda item: (-item[0], recognizers_priority(item[1])))
    best_lb, best_entity, best, best_count = evidence[0]
    validated_share = best.validated / best.matches if best.matches else 0.0
    confidence = min(
        0.99,
        0.5 * best_lb
        + 0.3 * validated_share
        + (0.2 if signal.suggests(best_entity) else 0.1 if best_lb >= 0.8 else 0.0),
    )
    return ColumnFinding(
        column=column.name,
        position=column.position,
        dtype=column.dtype,
        entities=tuple(entity for _, entity, _, _ in evidence),
        method="cells",
        share=round(best_count / n, 4),
        confidence=round(max(confidence, 0.05), 3),
        rows_examined=column.rows_sampled,
        values_examined=n,
        name_words=signal.words if not signal.is_negative else (),
        evidence=tuple(
            _evidence(entity, tally, counted, n, signal) for _, entity, tally, counted in evidence
        ),
        examples=tuple(v if found.masked else mask(v, best_entity) for v in best.examples),
    )


def _column_statistics(
    tallies: dict[str, _Tally],
    n: int,
    names: _NameShapeStats,
    combinations: _WordCombinations,
    places: _PlaceStats,
    known_names: int,
) -> None:
    """What the column as a whole says, beyond its cells one by one."""
    goods = combinations.are_goods()
    person = tallies.get("PERSON")
    if goods and person is not None:
        # The multi-word cells the name lists took for people are product names.
        person.matches = max(0, person.matches - combinations.known_cells)
        known_names -= combinations.known_cells
    if not goods and names.looks_like_names(n):
        tally = tallies.setdefault("PERSON", _Tally())
        for text in names.examples:
            tally.add(text, "name shape + column statistics", validated=False, count=0)
        tally.matches = max(tally.matches, names.shaped)
    if places.looks_like_places(n, known_names):
        tally = tallies.setdefault("LOCATION", _Tally())
        for text in places.examples:
            tally.add(text, "place names + column statistics", validated=False, count=0)
        tally.matches = max(tally.matches, places.shaped)


def recognizers_priority(entity: str) -> int:
    order = recognizers.CELL_ENTITIES
    return order.index(entity) if entity in order else len(order)


def _match_cell(
    text: str,
    matchers: recognizers.CellMatchers,
    numeric: bool,
    signal: NameSignal,
    tallies: dict[str, _Tally],
    count: int = 1,
) -> bool:
    has_at = "@" in text
    for matcher in matchers.pattern:
        if (matcher.entity == "EMAIL_ADDRESS") != has_at:
            continue
        found = matcher.match(text)
        if found is not None:
            weak = found.score < WEAK_PATTERN_SCORE or (
                found.entity == "IP_ADDRESS" and _version_like(text)
            )
            tallies.setdefault(found.entity, _Tally()).add(
                text, found.pattern, validated=found.validated, weak=weak, count=count
            )
            return True
    if has_at or not matchers.phone.plausible(text) or matchers.looks_like_date(text):
        return False
    # A bare run of digits is a phone number only where the name says so: ids,
    # amounts and order numbers are digits too.
    bare = text.isdigit()
    if bare and not signal.suggests("PHONE_NUMBER"):
        return False
    found = matchers.phone.match(text if not (numeric and bare and len(text) > 10) else "+" + text)
    if found is None and numeric and bare:
        found = matchers.phone.match(text)
    if found is not None:
        tallies.setdefault(found.entity, _Tally()).add(
            text, found.pattern, validated=True, count=count
        )
        return True
    return False


def _version_like(text: str) -> bool:
    """``1.4.0.12``: a dotted quad of small numbers is a build number more often than an IP."""
    parts = text.split(".")
    return len(parts) == 4 and all(p.isdigit() and int(p) < 32 for p in parts[:3])


def _threshold(entity: str, tally: _Tally, signal: NameSignal, numeric: bool) -> float:
    if signal.is_negative:
        return THRESHOLD_NEGATIVE_NAME
    if signal.suggests(entity):
        return THRESHOLD_NAMED
    if numeric and entity not in ("CREDIT_CARD",):
        return 1.01  # a number column is an id unless its name or a checksum says otherwise
    if entity in ("PERSON", "LOCATION", "PHONE_NUMBER", "IP_ADDRESS", "UK_NINO", "US_SSN"):
        return THRESHOLD_SHAPE
    if tally.validated * 10 >= tally.matches * 9:
        return THRESHOLD_VALIDATED
    return THRESHOLD_SHAPE


def _decided(tallies: dict[str, _Tally], n: int) -> bool:
    if n < CHUNK:
        return False
    if not tallies:
        return n >= 2 * CHUNK
    best = max(t.matches for t in tallies.values())
    # Clearly above every threshold but the negative-name one, or clearly below all.
    return wilson_lower(best, n) >= THRESHOLD_SHAPE + 0.1 or (
        n >= 2 * CHUNK and wilson_upper(best, n) < THRESHOLD_NAMED
    )


def _evidence(
    entity: str, tally: _Tally, counted: int, n: int, signal: NameSignal
) -> EntityEvidence:
    return EntityEvidence(
        entity=entity,
        matches=counted,
        examined=n,
        share=round(counted / n, 4) if n else 0.0,
        share_lower_bound=round(wilson_lower(counted, n), 4),
        validated=tally.validated,
        validator=recognizers.VALIDATOR_NAMES.get(entity) if tally.validated else None,
        patterns=tuple(p for p, _ in tally.patterns.most_common(3)),
        name_signal=signal.suggests(entity),
    )


# --- free text ---------------------------------------------------------------------------------


def _classify_free_text(
    column: ColumnSample, signal: NameSignal, options: ClassifierOptions
) -> ColumnFinding | None:
    tallies = tally_free_text(column, options)
    return decide_free_text(column, tallies, column.n_values, signal)


def is_free_text_candidate(text: str, use_ner: bool) -> bool:
    """A text worth presidio's analyzer: any with a NER model, else one with "@" or 7+ digits."""
    return use_ner or "@" in text or sum(c.isdigit() for c in text) >= 7


def tally_free_text(column: ColumnSample, options: ClassifierOptions) -> dict[str, _Tally]:
    """What presidio's analyzer finds in up to ``options.max_texts`` of the column's texts."""
    use_ner = recognizers.spacy_pipeline(options.spacy_model) is not None
    wanted = [
        e
        for e in FREE_TEXT_ENTITIES + (NER_ENTITIES if use_ner else ())
        if e not in options.ignore_entities
    ]
    if not wanted:
        return {}
    texts = column.values
    candidates = [
        (t, w)
        for t, w in zip(texts, column.weights(), strict=True)
        if is_free_text_candidate(t, use_ner)
    ]
    tallies: dict[str, _Tally] = {}
    for text, weight in candidates[: options.max_texts]:
        seen_here: set[str] = set()
        for result in recognizers.analyze_text(text[:5000], wanted, options.spacy_model):
            if result.score < MIN_TEXT_SCORE or result.entity_type in seen_here:
                continue
            span = text[result.start : result.end]
            if result.entity_type == "PHONE_NUMBER" and (
                span.isdigit() or sum(c.isdigit() for c in span) < 7
            ):
                # Bare digit runs in prose are model numbers and ids as often as phones;
                # "16/92", "163 60" (flat numbers, postcodes) are too short to be phones.
                continue
            seen_here.add(result.entity_type)
            tallies.setdefault(result.entity_type, _Tally()).add(
                span, "presidio analyzer", validated=result.score >= 1.0, count=weight
            )
    return tallies


def decide_free_text(
    column: ColumnSample,
    tallies: dict[str, _Tally],
    n: int,
    signal: NameSignal,
    *,
    masked: bool = False,
) -> ColumnFinding | None:
    """The free-text finding: entities seen in at least two distinct values of ``n``."""
    found = [
        (entity, tally)
        for entity, tally in tallies.items()
        if len(tally.distinct) >= MIN_TEXT_HITS or (n < 20 and tally.matches >= 1)
    ]
    if not found:
        return None
    found.sort(key=lambda item: -item[1].matches)
    best_entity, best = found[0]
    share = best.matches / n
    confidence = min(
        0.95,
        0.5
        + 0.05 * min(len(best.distinct), 6)
        + 0.15 * (best.validated / best.matches)
        + (0.1 if signal.suggests(best_entity) else 0.0),
    )
    return ColumnFinding(
        column=column.name,
        position=column.position,
        dtype=column.dtype,
        entities=tuple(e for e, _ in found),
        method="free_text",
        share=round(share, 4),
        confidence=round(confidence, 3),
        rows_examined=column.rows_sampled,
        values_examined=n,
        name_words=signal.words if not signal.is_negative else (),
        evidence=tuple(_evidence(e, t, t.matches, n, signal) for e, t in found),
        examples=tuple(v if masked else mask(v, best_entity) for v in best.examples),
    )


# --- dates of birth ----------------------------------------------------------------------------


def _mostly_dates(column: ColumnSample) -> bool:
    matchers = recognizers.cell_matchers()
    sample = column.values[:50]
    return bool(sample) and sum(matchers.looks_like_date(v) for v in sample) >= 0.9 * len(sample)


def _parse_dates(column: ColumnSample) -> list[dt.date]:
    if column.dates:
        return column.dates
    out = []
    for value in column.values:
        for fmt in ("%Y-%m-%d", "%d/%m/%Y", "%m/%d/%Y", "%d.%m.%Y", "%Y/%m/%d", "%d-%m-%Y"):
            try:
                out.append(dt.datetime.strptime(value[:10], fmt).date())
                break
            except ValueError:
                continue
    return out


def _date_of_birth(
    column: ColumnSample, signal: NameSignal, options: ClassifierOptions
) -> ColumnFinding | None:
    if "DATE_OF_BIRTH" in options.ignore_entities or not column.values:
        return None
    dates = _parse_dates(column)
    if len(dates) < max(1, len(column.values) // 2):
        return None
    today = dt.date.today()
    past = [d for d in dates if dt.date(1900, 1, 1) <= d <= today]
    n = len(dates)
    lb = wilson_lower(len(past), n)
    date_only = all(v.endswith("00:00:00") or len(v) <= 10 for v in column.values[:200])
    years = sorted(d.year for d in past)
    spread = years[-1] - years[0] if years else 0
    median_age = today.year - years[len(years) // 2] if years else 0
    if signal.suggests("DATE_OF_BIRTH"):
        if lb < 0.8:
            return None
        confidence = 0.9
        words = signal.words
    elif (
        not signal.is_negative
        and date_only
        and spread >= 30
        and 18 <= median_age <= 90
        and lb >= 0.95
    ):
        confidence = 0.6  # the values alone: date-only, decades apart, all in the past
        words = ()
    else:
        return None
    tally = _Tally(matches=len(past), validated=0)
    return ColumnFinding(
        column=column.name,
        position=column.position,
        dtype=column.dtype,
        entities=("DATE_OF_BIRTH",),
        method="column_name+dates" if words else "dates",
        share=round(len(past) / n, 4),
        confidence=confidence,
        rows_examined=column.rows_sampled,
        values_examined=n,
        name_words=words,
        evidence=(_evidence("DATE_OF_BIRTH", tally, len(past), n, signal),),
        examples=tuple(mask(d.isoformat(), "DATE_OF_BIRTH") for d in past[:1]),
    )
