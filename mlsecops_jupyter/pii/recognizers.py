"""presidio, set up offline, and its recognizers turned into whole-cell matchers.

presidio's own ``analyze`` costs 0.1-0.7 ms per value, too slow for a column.
Here each PatternRecognizer's patterns are compiled once and matched against
a whole cell; presidio's own validators (Luhn, IBAN checksum, NHS modulus 11,
SSN rules, ...) then confirm or reject the match, exactly as presidio scores a
pattern result: validated -> 1.0, invalidated -> dropped. No regex is copied
here: every pattern comes from presidio's recognizer classes.

Offline: the NLP engine is presidio's ``no_op`` engine unless ``pii.spacy_model``
names an installed spaCy model package or a saved pipeline directory (loaded
here, never downloaded: presidio's own spaCy engine would run ``spacy
download`` for a model it cannot find), and e-mail validation uses a tldextract instance that
reads only its bundled public suffix snapshot (presidio's module-level
``tldextract.extract`` would fetch the list from the network).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import re
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# Entities matched on whole cells, most specific first: a value that several
# recognizers accept counts for the first (a checksum beats a phone shape).
CELL_ENTITIES: tuple[str, ...] = (
    "CREDIT_CARD",
    "IBAN_CODE",
    "EMAIL_ADDRESS",
    "UK_NHS",
    "ES_NIF",
    "ES_NIE",
    "IT_FISCAL_CODE",
    "UK_NINO",
    "US_SSN",
    "US_ITIN",
    "DE_TAX_ID",
    "IP_ADDRESS",
    "PHONE_NUMBER",
)

# What presidio's validator checks, for the evidence shown to users.
VALIDATOR_NAMES: dict[str, str] = {
    "CREDIT_CARD": "Luhn checksum",
    "IBAN_CODE": "IBAN checksum (mod 97)",
    "EMAIL_ADDRESS": "domain has a public suffix",
    "UK_NHS": "NHS modulus-11 check digit",
    "ES_NIF": "NIF check letter",
    "ES_NIE": "NIE check letter",
    "IT_FISCAL_CODE": "codice fiscale check character",
    "US_SSN": "SSN invalid-range rules",
    "DE_TAX_ID": "Steuer-ID check digit",
    "IP_ADDRESS": "parses as an IP address",
    "PHONE_NUMBER": "valid number for its region (phonenumbers)",
}

# Regions the phone matcher accepts numbers of (presidio's default set plus
# the European ones the project's users work with).
PHONE_REGIONS: tuple[str, ...] = (
    "US", "GB", "DE", "FR", "ES", "NL", "IT", "BE", "CH", "AT", "IE", "CA", "PT", "IL", "IN", "BR",
)  # fmt: skip

_log = logging.getLogger(__name__)
_lock = threading.Lock()

_PHONE_CHARS = frozenset("+0123456789 ()-./")
_EXTENSION = re.compile(r"\s*(?:x|ext\.?|#)\s*\d{1,6}$", re.I)


def _offline_suffix_extractor() -> Any:
    import tldextract

    # No URLs and no cache directory: the bundled snapshot, never the network.
    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None, fallback_to_snapshot=True)


@functools.lru_cache(maxsize=1)
def suffix_extractor() -> Any:
    return _offline_suffix_extractor()


def _offline_email_recognizer() -> Any:
    from presidio_analyzer.predefined_recognizers import EmailRecognizer

    class OfflineEmailRecognizer(EmailRecognizer):  # type: ignore[misc,unused-ignore]
        """presidio's e-mail recognizer, validating domains against the bundled suffix list."""

        def validate_result(self, pattern_text: str) -> bool:
            return bool(suffix_extractor()(pattern_text).fqdn != "")

    return OfflineEmailRecognizer()


def pattern_recognizers() -> list[Any]:
    """presidio's pattern recognizers for the entities matched on cells (fresh instances)."""
    from presidio_analyzer import predefined_recognizers as pr

    found = [
        pr.CreditCardRecognizer(),
        pr.IbanRecognizer(),
        _offline_email_recognizer(),
        pr.NhsRecognizer(),
        pr.EsNifRecognizer(),
        pr.EsNieRecognizer(),
        pr.ItFiscalCodeRecognizer(),
        pr.UkNinoRecognizer(),
        pr.UsSsnRecognizer(),
        pr.UsItinRecognizer(),
        pr.DeTaxIdRecognizer(),
        pr.IpRecognizer(),
    ]
    # Spanish and Italian ids are tagged with their language; the analyzer here
    # runs in English only (no NLP model), and their patterns do not depend on it.
    for recognizer in found:
        recognizer.supported_language = "en"
    return found


@dataclasses.dataclass(frozen=True)
class CellMatch:
    entity: str
    score: float  # presidio's: the pattern's score, or 1.0 once a validator confirmed it
    validated: bool
    pattern: str


class PatternCellMatcher:
    """One presidio PatternRecognizer, matching whole cells."""

    def __init__(self, recognizer: Any) -> None:
        self.recognizer = recognizer
        self.entity: str = recognizer.supported_entities[0]
        flags = int(getattr(recognizer, "global_regex_flags", re.I | re.M | re.S) or 0)
        self.patterns: list[tuple[re.Pattern[str], float, str]] = [
            (re.compile(p.regex, flags), float(p.score), str(p.name)) for p in recognizer.patterns
        ]
        self._validates = "validate_result" in _overrides(recognizer)
        self._invalidates = "invalidate_result" in _overrides(recognizer)

    def match(self, text: str) -> CellMatch | None:
        best: CellMatch | None = None
        for compiled, score, name in self.patterns:
            if compiled.fullmatch(text) is None:
                continue
            validated = False
            if self._validates:
                verdict = self.recognizer.validate_result(text)
                if verdict is False:
                    continue
                if verdict is True:
                    score, validated = 1.0, True
            if self._invalidates and self.recognizer.invalidate_result(text):
                continue
            if best is None or score > best.score:
                best = CellMatch(self.entity, score, validated, name)
            if best.score >= 1.0:
                break
        return best


def _overrides(recognizer: Any) -> set[str]:
    from presidio_analyzer import PatternRecognizer

    names: set[str] = set()
    for cls in type(recognizer).__mro__:
        if cls is PatternRecognizer:
            break
        names.update(n for n in ("validate_result", "invalidate_result") if n in vars(cls))
    return names


class PhoneCellMatcher:
    """presidio's PhoneRecognizer (phonenumbers) accepting only a number that fills the cell."""

    entity = "PHONE_NUMBER"

    def __init__(self) -> None:
        from presidio_analyzer.predefined_recognizers import PhoneRecognizer

        self.recognizer = PhoneRecognizer(supported_regions=PHONE_REGIONS)
        self.score = float(PhoneRecognizer.SCORE)

    @staticmethod
    def plausible(text: str) -> bool:
        text = _EXTENSION.sub("", text)
        if not 7 <= len(text) <= 24 or not _PHONE_CHARS.issuperset(text):
            return False
        digits = sum(c.isdigit() for c in text)
        return 7 <= digits <= 15

    def match(self, text: str) -> CellMatch | None:
        """A valid number filling the whole cell, for one of the recognizer's regions.

        presidio runs ``PhoneNumberMatcher`` at leniency VALID over free text;
        for a whole cell that is one ``parse`` + ``is_valid_number`` per region,
        without the matcher's scanning.
        """
        text = _EXTENSION.sub("", text)
        if not self.plausible(text):
            return None
        import phonenumbers

        international = text.startswith(("+", "00"))
        regions = (None,) if international else self.recognizer.supported_regions
        candidate = "+" + text[2:] if text.startswith("00") else text
        possible: CellMatch | None = None
        for region in regions:
            try:
                number = phonenumbers.parse(candidate, region)
            except phonenumbers.NumberParseException:
                continue
            if phonenumbers.is_valid_number(number):
                where = region or phonenumbers.region_code_for_number(number)
                return CellMatch(self.entity, self.score, True, f"valid {where} number")
            if possible is None and not text.isdigit() and phonenumbers.is_possible_number(number):
                # Formatted like a phone number, but not an assigned range (test data
                # and new ranges): evidence, not proof.
                possible = CellMatch(self.entity, self.score / 2, False, "possible number")
        return possible


@dataclasses.dataclass
class CellMatchers:
    pattern: list[PatternCellMatcher]
    phone: PhoneCellMatcher
    dates: list[re.Pattern[str]]

    def looks_like_date(self, text: str) -> bool:
        return any(p.fullmatch(text) for p in self.dates)


def cell_matchers() -> CellMatchers:
    """The compiled matchers, built once per process (about 2 s: presidio's registry).

    Thread-safe: the guard warms them up in the background while the user's
    first cells run, and a scan that needs them earlier waits for that build
    instead of starting a second one.
    """
    with _build_lock:
        return _build_cell_matchers()


_build_lock = threading.Lock()


@functools.lru_cache(maxsize=1)
def _build_cell_matchers() -> CellMatchers:
    from presidio_analyzer.predefined_recognizers import DateRecognizer

    date: Any = DateRecognizer()
    flags = int(getattr(date, "global_regex_flags", re.I) or 0)
    with _lock:
        return CellMatchers(
            pattern=[PatternCellMatcher(r) for r in pattern_recognizers()],
            phone=PhoneCellMatcher(),
            dates=[re.compile(str(p.regex), flags) for p in list(date.patterns)],
        )


class NerModelWarning(UserWarning):
    """``pii.spacy_model`` names a model that cannot be used; the scan goes on without NER."""


def _spacy_problem(model: str) -> tuple[Any, str | None]:
    """(the loaded pipeline, None), or (None, why it cannot be used)."""
    try:
        import spacy
    except ImportError:
        return None, "spaCy is not installed"
    path = Path(model).expanduser()
    if path.is_dir():
        where: str | Path = path
    elif spacy.util.is_package(model):
        where = model
    else:
        # presidio's own engine would run `spacy download` here: never from a notebook.
        return None, (
            "it is neither an installed spaCy model package nor a model directory "
            "(nothing is downloaded: install the model's package, or give the directory "
            "a pipeline was saved to with nlp.to_disk)"
        )
    try:
        nlp = spacy.load(where)
    except Exception as error:
        return None, f"spaCy could not load it ({type(error).__name__}: {error})"
    if not any("doc.ents" in nlp.get_pipe_meta(name).assigns for name in nlp.pipe_names):
        return None, (
            f"its pipeline ({', '.join(nlp.pipe_names) or 'empty'}) has no component that "
            "finds entities (ner or entity_ruler)"
        )
    return nlp, None


@functools.lru_cache(maxsize=8)
def spacy_pipeline(model: str | None) -> Any:
    """The spaCy pipeline ``model`` names (a package or a directory), loaded once; None if unusable.

    An unusable model is warned about once (:class:`NerModelWarning`) and the scan
    goes on with presidio's patterns only: a configuration mistake must not fail
    the user's cell, nor hide the e-mail addresses a pattern finds.
    """
    if not model:
        return None
    nlp, problem = _spacy_problem(model)
    if problem is not None:
        message = (
            f"mlsecops: pii.spacy_model {model!r} cannot be used: {problem}. Names and places "
            "in free-text columns are not looked for; everything else is."
        )
        warnings.warn(message, NerModelWarning, stacklevel=2)
    return nlp


def _loaded_spacy_engine(nlp: Any) -> Any:
    from presidio_analyzer.nlp_engine import SpacyNlpEngine

    class LoadedSpacyNlpEngine(SpacyNlpEngine):  # type: ignore[misc,unused-ignore]
        """presidio's spaCy engine over a pipeline loaded here.

        ``SpacyNlpEngine.load`` downloads a model it cannot find; this one never loads.
        """

        def __init__(self, pipeline: Any) -> None:
            name = str(pipeline.meta.get("name") or "pipeline")
            super().__init__(models=[{"lang_code": "en", "model_name": name}])
            self.pipeline = pipeline

        def load(self) -> None:
            self.nlp = {"en": self.pipeline}  # type: ignore[assignment,unused-ignore]

    engine = LoadedSpacyNlpEngine(nlp)
    engine.load()
    return engine


@functools.lru_cache(maxsize=4)
def analyzer(spacy_model: str | None = None) -> Any:
    """presidio's AnalyzerEngine, offline: no_op NLP engine unless ``spacy_model`` is usable.

    Its registry holds the same recognizers as the cell matchers (plus the phone
    recognizer, and spaCy's NER recognizer for names and places when a model is
    in use), so free text and cells are judged by the same rules.
    """
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
    from presidio_analyzer.nlp_engine import NlpEngineProvider
    from presidio_analyzer.predefined_recognizers import PhoneRecognizer, SpacyRecognizer

    nlp = spacy_pipeline(spacy_model)
    if nlp is not None:
        engine = _loaded_spacy_engine(nlp)
    else:
        engine = NlpEngineProvider(
            nlp_configuration={
                "nlp_engine_name": "no_op",
                "models": [{"lang_code": "en", "model_name": "no_op"}],
            }
        ).create_engine()
    registry = RecognizerRegistry(supported_languages=["en"])
    for recognizer in pattern_recognizers():
        registry.add_recognizer(recognizer)
    registry.add_recognizer(PhoneRecognizer(supported_regions=PHONE_REGIONS))
    if nlp is not None:
        registry.add_recognizer(SpacyRecognizer(supported_entities=["PERSON", "LOCATION"]))
    return AnalyzerEngine(nlp_engine=engine, registry=registry, supported_languages=["en"])


def analyze_text(text: str, entities: Sequence[str] | None, spacy_model: str | None) -> list[Any]:
    return list(analyzer(spacy_model).analyze(text=text, language="en", entities=entities))
