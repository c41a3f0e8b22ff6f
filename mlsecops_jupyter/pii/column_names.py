"""What a column's name says about its values, in several languages.

A name is split into words (snake_case, camelCase, kebab-case, dotted, digits)
and each word looked up in a small multilingual vocabulary. The name alone
never makes a finding: it lowers the evidence the values must show (a column
called ``telephone`` needs fewer valid numbers than one called ``c7``), and a
qualifier such as ``sent``, ``model``, ``length`` or ``verified`` says the
column is *about* personal data without holding it (``email_sent``,
``phone_model``, ``name_length``, ``address_verified``).
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import re
import unicodedata


def _wordset(text: str) -> frozenset[str]:
    return frozenset(text.split())


# word -> entity it suggests. Words are lower case without accents.
_VOCABULARY: dict[str, tuple[str, ...]] = {
    "EMAIL_ADDRESS": (
        "email", "mail", "e-mail", "emailaddress", "courriel", "correo", "mailadres", "emailadres",
        "mailadresse", "emailadresse",
    ),
    "PHONE_NUMBER": (
        "phone", "phonenumber", "telephone", "tel", "telefon", "telefono", "telefoon", "mobile",
        "mobil", "handy", "portable", "cell", "cellphone", "movil", "mobiel", "fax", "gsm",
        "msisdn", "telefonnummer", "telefoonnummer", "numero_telephone",
    ),
    "PERSON": (
        "name", "names", "fullname", "firstname", "lastname", "surname", "forename", "givenname",
        "familyname", "nom", "prenom", "noms", "vorname", "nachname", "familienname", "nombre",
        "apellido", "apellidos", "naam", "voornaam", "achternaam", "cognome", "nome", "customer",
        "client", "kunde", "patient", "employee", "contact", "person", "owner", "holder",
        "cardholder", "username", "author",
    ),
    "LOCATION": (
        "address", "addr", "adresse", "adres", "direccion", "domicilio", "indirizzo", "anschrift",
        "street", "strasse", "rue", "calle", "straat", "via", "city", "town", "ville", "stadt",
        "ort", "ciudad", "localidad", "plaats", "woonplaats", "citta", "zip", "zipcode", "postcode",
        "postal", "postalcode", "plz", "postleitzahl", "codepostal", "residence", "wohnort",
    ),
    "CREDIT_CARD": (
        "card", "cc", "ccnum", "creditcard", "pan", "carte", "tarjeta", "kreditkarte", "karte",
        "kaart", "carta",
    ),
    "IBAN_CODE": ("iban", "bankaccount", "rib", "kontonummer", "rekeningnummer", "cuenta"),
    "US_SSN": ("ssn", "socialsecurity", "social"),
    "IP_ADDRESS": ("ip", "ipaddress", "ipv4", "ipv6", "ipaddr"),
    "UK_NHS": ("nhs",),
    "UK_NINO": ("nino", "nin", "nationalinsurance"),
    "ES_NIF": ("nif", "dni"),
    "ES_NIE": ("nie",),
    "IT_FISCAL_CODE": ("codicefiscale", "fiscale"),
    "DE_TAX_ID": ("steuerid", "steueridentifikationsnummer", "idnr"),
    "DATE_OF_BIRTH": (
        "dob", "birth", "birthday", "birthdate", "dateofbirth", "born", "naissance",
        "datenaissance", "geburtsdatum", "geburtstag", "nacimiento", "fechanacimiento",
        "geboortedatum", "nascita",
    ),
}  # fmt: skip

# Words that make a personal-sounding name describe something else.
NEGATIVE_WORDS: frozenset[str] = _wordset(
    """
    sent send sends sending opened open clicked bounced bounce verified verify validated
    valid invalid confirmed model make brand type kind length len size count counts cnt
    number_of num_of id ids uid key hash hashed md5 sha sha1 sha256 token flag is has
    enabled disabled status state format domain provider template score rate ratio pct
    percent share optin opt optout consent allowed changed updated created at ts version ver
    code_type product company firm file path column field table feature category class label
    group segment
    """
)

# Qualifiers that turn "name" into something that is not a person.
_NOT_PERSON_WITH_NAME = _wordset(
    """
    product item company file host hostname domain brand model column field table feature
    dataset city street country state region store shop vendor supplier project team app
    category department machine server device bank plan campaign event
    """
)

# Words that say the column names goods or organisations ("product", "brand",
# "make"): their values borrow people's names ("Otto Armchair", "Ford") without
# being people, so the name lists alone never make them personal.
GOODS_WORDS: frozenset[str] = _wordset(
    """
    product products item items article articles sku brand brands make manufacturer maker
    model models vendor supplier merchant store shop company firm organisation organization
    org collection catalog catalogue goods title dish recipe menu drink
    """
)

_WORD_OF: dict[str, str] = {w: e for e, words in _VOCABULARY.items() for w in words}
# "name" qualified by a place word is a place ("city_name", "street_name").
_PLACE_QUALIFIERS = frozenset({"city", "street", "town", "country", "state", "region"})

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_SPLIT = re.compile(r"[^0-9a-z]+")


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.replace("ß", "ss"))
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower()


@functools.lru_cache(maxsize=4096)
def words(name: str) -> tuple[str, ...]:
    """``customerEMail_2`` -> ``("customer", "e", "mail", "2")``."""
    spaced = _CAMEL.sub(" ", name)
    return tuple(w for w in _SPLIT.split(_fold(spaced)) if w)


@dataclasses.dataclass(frozen=True)
class NameSignal:
    """What a column name suggests: entities, the words that said so, and qualifiers against."""

    entities: tuple[str, ...]
    words: tuple[str, ...]
    negative: tuple[str, ...]
    goods: tuple[str, ...] = ()  # words saying the values name goods or organisations

    @property
    def is_negative(self) -> bool:
        return bool(self.negative)

    @property
    def names_goods(self) -> bool:
        """``product``, ``brand``, ``c_make``: not a person column unless a person word says so."""
        return bool(self.goods) and "PERSON" not in self.entities

    def suggests(self, entity: str) -> bool:
        return entity in self.entities and not self.negative


@functools.lru_cache(maxsize=4096)
def name_signal(name: str) -> NameSignal:
    tokens = words(name)
    # Joined neighbours catch "e mail", "first name", "date of birth", "social security".
    candidates = list(tokens)
    candidates += [a + b for a, b in itertools.pairwise(tokens)]
    candidates += [a + b + c for a, b, c in zip(tokens, tokens[1:], tokens[2:], strict=False)]
    joined = "".join(tokens)
    candidates.append(joined)
    entities: list[str] = []
    hits: list[str] = []
    for word in candidates:
        entity = _WORD_OF.get(word)
        if entity is None and len(word) >= 6:
            # Compound words: "kundenemail", "customername", "billingaddress".
            entity = next(
                (e for w, e in _WORD_OF.items() if len(w) >= 4 and word.endswith(w)), None
            )
        if entity is not None:
            hits.append(word)
            if entity not in entities:
                entities.append(entity)
    token_set = set(tokens)
    if "PERSON" in entities and token_set & _NOT_PERSON_WITH_NAME:
        entities.remove("PERSON")
        if token_set & _PLACE_QUALIFIERS and "LOCATION" not in entities:
            entities.append("LOCATION")
    if "DATE_OF_BIRTH" in entities:
        # "birth_place" is a place; "date_of_birth" is not a person.
        entities = [e for e in entities if e != "PERSON"]
    negative = tuple(
        w for w in tokens if w in NEGATIVE_WORDS and w not in ("number", "code")
    ) + tuple(f"{a}_{b}" for a, b in itertools.pairwise(tokens) if f"{a}_{b}" in NEGATIVE_WORDS)
    goods = tuple(w for w in tokens if w in GOODS_WORDS)
    return NameSignal(tuple(entities), tuple(dict.fromkeys(hits)), negative, goods)
