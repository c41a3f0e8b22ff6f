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
# A column of person names without a telling column name (``c1``): most cells are
# name-shaped (2-5 capitalised words, letters only), a fair share have a word in
# the name lists, the values are nearly all distinct and so are their last words
# (unlike "Blue Chair", "Red Lamp").
NAME_SHAPE_MIN_KNOWN = 0.2
NAME_SHAPE_MIN_DISTINCT = 0.8
NAME_SHAPE_MIN_LAST_WORDS = 0.03
NAME_SHAPE_DISTINCT_CAP = 1000  # distinct values looked at: a full scan can list millions


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


def _person_like(text: str, gaz: Gazetteer) -> tuple[bool, bool]:
    """(in the gazetteer, shaped like a name) for one cell."""
    if len(text) > 60 or any(c.isdigit() for c in text) or "@" in text:
        return False, False
    tokens = [t for t in _TOKEN.split(text) if t]
    # Titles and degrees ("Dr.", "Univ.Prof.", "B.Sc.") are not part of the name.
    core = [t for t in tokens if fold(t).strip(".") not in TITLES and "." not in t[:-1]]
    if not 1 <= len(core) <= 5 or not all(_NAME_WORD.match(t) for t in core):
        return False, False
    words = [p for t in core for p in fold(t).strip(".'").split("-") if p]
    words = [w for w in words if w not in PARTICLES]
    if not words:
        return False, False
    shaped = all(t[0].isupper() for t in core if fold(t) not in PARTICLES)
    known = sum(gaz.is_name_word(w) for w in words)
    return known >= 1 and known * 2 >= len(words), shaped


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
            self.last_words.add(folded[-1])
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append(text)

    def looks_like_names(self, n: int) -> bool:
        if n < 20 or self.shaped < 10:
            return False
        # Nearly all distinct among up to 1000 values (a sample, or a full scan's
        # distinct values: then a large pool of values passes, a small one not).
        return (
            self.known >= NAME_SHAPE_MIN_KNOWN * self.shaped
            and len(self.distinct)
            >= NAME_SHAPE_MIN_DISTINCT * min(self.shaped, NAME_SHAPE_DISTINCT_CAP)
            and len(self.last_words) >= max(5, NAME_SHAPE_MIN_LAST_WORDS * len(self.distinct))
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
    if column.kind == "datetime" or (column.kind == "string" and _mostly_dates(column)):
        return _date_of_birth(column, signal, options)
    if column.kind not in ("string", "integer", "binary", "nested") or not column.values:
        return None
    values = column.values
    if not column.nested and not _is_free_text(values):
        finding = _classify_cells(column, signal, options)
        if finding is not None:
            return finding
    if column.kind in ("string", "binary", "nested") and (column.nested or _is_text(values)):
        return _classify_free_text(column, signal, options)
    return None


def _is_text(values: list[str]) -> bool:
    sample = values[:200]
    return statistics.median(len(v) for v in sample) >= 20 and (
        sum(v.count(" ") >= 2 for v in sample) * 2 >= len(sample)
    )


def _is_free_text(values: list[str]) -> bool:
    sample = values[:200]
    return statistics.median(len(v) for v in sample) >= 60


def _classify_cells(
    column: ColumnSample, signal: NameSignal, options: ClassifierOptions
) -> ColumnFinding | None:
    matchers = recognizers.cell_matchers()
    gaz = gazetteer()
    values = column.values
    weights = column.weights()
    numeric = column.kind == "integer"
    # A handful of repeated values is a code or a category: only a validated
    # pattern (an e-mail, a card number) can make it personal, not word lists.
    categorical = column.n_values >= 20 and len(set(values[:500])) < 5
    tallies: dict[str, _Tally] = {}
    person_shaped = 0
    location_shaped = 0
    names = _NameShapeStats()
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
            known, shaped = _person_like(text, gaz)
            if shaped:
                names.add(text, known, gaz, w)
            if known:
                tallies.setdefault("PERSON", _Tally()).add(
                    text, "name gazetteer", validated=False, count=w
                )
            elif shaped:
                person_shaped += w
            if _address_like(text, gaz):
                tallies.setdefault("LOCATION", _Tally()).add(
                    text, "address shape", validated=False, count=w
                )
            elif _city_like(text, gaz):
                tallies.setdefault("LOCATION", _Tally()).add(
                    text, "city gazetteer", validated=False, count=w
                )
            elif shaped or (text[:1].isupper() and not any(c.isdigit() for c in text)):
                location_shaped += w
                if signal.suggests("LOCATION"):
                    tallies.setdefault("LOCATION", _Tally()).add(
                        text, "place-shaped value", validated=False, count=w
                    )
            if shaped and not known and signal.suggests("PERSON"):
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
    if not numeric and not categorical and names.looks_like_names(n):
        tally = tallies.setdefault("PERSON", _Tally())
        for text in names.examples:
            tally.add(text, "name shape + column statistics", validated=False, count=0)
        tally.matches = max(tally.matches, names.shaped)
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
        examples=tuple(mask(v, best_entity) for v in best.examples),
    )


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
    use_ner = recognizers.spacy_model_available(options.spacy_model)
    wanted = [
        e
        for e in FREE_TEXT_ENTITIES + (NER_ENTITIES if use_ner else ())
        if e not in options.ignore_entities
    ]
    if not wanted:
        return None
    texts = column.values
    candidates = [
        (t, w)
        for t, w in zip(texts, column.weights(), strict=True)
        if use_ner or "@" in t or sum(c.isdigit() for c in t) >= 7
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
    n = column.n_values
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
        examples=tuple(mask(v, best_entity) for v in best.examples),
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
