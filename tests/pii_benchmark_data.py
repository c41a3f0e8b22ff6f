"""A labelled, seeded set of frames for the personal-data classifier.

Shared by the tests (small sizes) and tests/benchmarks/bench_pii.py (full
size). Each frame comes with labels: column -> the entity type it holds, or
None for a hard negative. Values are synthetic, with fixed seeds, from three
sources: Faker (the locale frames and the held-out frames), mimesis (the
independent frames: its own curated names, towns, streets, dishes and cars,
sharing nothing with Faker) and the hand-written goods lists below.
"""

from __future__ import annotations

import dataclasses
import random
import string
import uuid
from typing import Any

import numpy as np
import pandas as pd
from faker import Faker

LOCALES = ("en_US", "en_GB", "fr_FR", "de_DE", "es_ES", "nl_NL")


@dataclasses.dataclass
class LabelledFrame:
    name: str
    frame: pd.DataFrame
    labels: dict[str, str | None]  # column -> entity (None: no personal data)


def luhn_complete(prefix: str) -> str:
    digits = [int(c) for c in prefix]
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 0:
            d *= 2
            d = d - 9 if d > 9 else d
        total += d
    return prefix + str((10 - total % 10) % 10)


def luhn_fail(rng: random.Random, length: int = 16) -> str:
    good = luhn_complete("4" + "".join(rng.choice(string.digits) for _ in range(length - 2)))
    return good[:-1] + str((int(good[-1]) + 1 + rng.randrange(8)) % 10)


def nhs_number(rng: random.Random) -> str:
    while True:
        digits = [rng.randrange(10) for _ in range(9)]
        check = 11 - sum(d * (10 - i) for i, d in enumerate(digits)) % 11
        check = 0 if check == 11 else check
        if check != 10:
            s = "".join(map(str, digits)) + str(check)
            return f"{s[:3]} {s[3:6]} {s[6:]}"


def nino(rng: random.Random) -> str:
    first = rng.choice("ABCEGHJKLMNOPRSTWXY")
    second = rng.choice("ABCEGHJKLMNPRSTWXY")
    digits = "".join(rng.choice(string.digits) for _ in range(6))
    return f"{first}{second} {digits[:2]} {digits[2:4]} {digits[4:]} {rng.choice('ABCD')}"


def _with_nulls(values: list[Any], share: float, rng: random.Random) -> list[Any]:
    return [None if rng.random() < share else v for v in values]


def _text(fake: Faker, rng: random.Random, n: int, insert: Any, share: float) -> list[str]:
    out = []
    every = round(1 / share)
    for i in range(n):
        body = fake.paragraph(nb_sentences=3)
        if i % every == every // 2:
            body = f"{body} Please reach me at {insert()} thanks."
        out.append(body)
    return out


# --- goods that look like names: hand-written hard negatives --------------------------------------

# Written for this benchmark from general knowledge of shop catalogues, not read
# from Faker or from the classifier's word lists. Each list is a way a product
# name borrows from people or places.
NAME_COLOURS = (
    "Rose", "Lily", "Ivy", "Hazel", "Olive", "Amber", "Ruby", "Jade", "Violet", "Daisy", "Jasmine",
    "Poppy", "Iris", "Holly", "Heather", "Coral", "Pearl", "Scarlett", "Sienna", "Willow", "Sage",
    "Fern", "Dahlia", "Magnolia", "Saffron", "Ginger", "Cherry", "Dawn", "Crystal", "Flora",
)  # fmt: skip
# Furniture and fashion lines named after people ("Otto Armchair", "Harper Dress").
LINE_NAMES = (
    "Harper", "Oliver", "Stella", "Hudson", "Chloe", "Emma", "Leo", "Milo", "Luna", "Nora", "Felix",
    "Hugo", "Oscar", "Otto", "Elsa", "Greta", "Ingrid", "Sofia", "Ada", "Ella", "Theo", "Arthur",
    "Louis", "Jules", "Margot", "Clara", "Edith", "Anton", "Sven", "Matilda", "Frida", "Vera",
)  # fmt: skip
GOODS = (
    "Chair", "Armchair", "Sofa", "Lamp", "Desk", "Table", "Rug", "Cushion", "Throw", "Vase",
    "Mirror", "Bed", "Stool", "Bench", "Shelf", "Bookcase", "Wardrobe", "Dresser", "Candle",
    "Curtain", "Duvet", "Pillow", "Blanket", "Towel", "Mug", "Bowl", "Teapot", "Dress", "Blouse",
    "Skirt", "Scarf", "Cardigan", "Sweater", "Jacket", "Coat", "Sandal", "Boot", "Sneaker", "Tote",
    "Backpack",
)  # fmt: skip
# Brands that are (or were) someone's surname, and what they sell.
BRANDS = (
    "Ford", "Lincoln", "Chrysler", "Dodge", "Porsche", "Ferrari", "Bentley", "Bosch", "Siemens",
    "Miele", "Braun", "Philips", "Dyson", "Dior", "Chanel", "Armani", "Prada", "Gucci", "Versace",
    "Hilfiger", "Klein", "Cartier", "Heinz", "Cadbury", "Kellogg", "Peugeot", "Renault", "Citroen",
    "Opel", "Barilla", "Ferrero", "Disney",
)  # fmt: skip
BRAND_GOODS = (
    "Dishwasher", "Kettle", "Toaster", "Blender", "Vacuum", "Fan", "Heater", "Shaver", "Drill",
    "Fridge", "Perfume", "Handbag", "Wallet", "Sunglasses", "Watch", "Coupe", "Sedan", "Estate",
)  # fmt: skip
# Collections named after famous streets ("Bond Street Blazer").
STREET_LINES = (
    "Park Avenue", "Bond Street", "Abbey Road", "Madison Avenue", "Savile Row", "Rodeo Drive",
    "Fifth Avenue", "Sunset Boulevard", "Carnaby Street", "Portobello Road", "Via Veneto",
    "Harley Street", "Baker Street", "Oxford Street", "Regent Street", "Melrose Avenue",
)  # fmt: skip


def goods_columns(rng: random.Random, n: int) -> dict[str, list[str]]:
    """Product-name columns under meaningless names: every one a hard negative."""

    def pick(*lists: tuple[str, ...]) -> list[str]:
        return [" ".join(rng.choice(words) for words in lists) for _ in range(n)]

    return {
        "g1": pick(NAME_COLOURS, GOODS),  # "Rose Chair": a first name + a common noun
        "g2": pick(LINE_NAMES, GOODS),  # "Otto Armchair"
        "g3": pick(BRANDS, BRAND_GOODS),  # "Bosch Dishwasher"
        "g4": pick(STREET_LINES, GOODS),  # "Bond Street Blazer"
        "g5": pick(NAME_COLOURS, LINE_NAMES, GOODS),  # "Ivy Hugo Lamp"
    }


def locale_frame(locale: str, n: int, seed: int) -> LabelledFrame:
    fake = Faker(locale)
    fake.seed_instance(seed)
    rng = random.Random(seed)
    cols: dict[str, Any] = {}
    labels: dict[str, str | None] = {}

    def add(name: str, values: Any, label: str | None) -> None:
        cols[name] = values
        labels[name] = label

    # Positives with names that say what they hold (in the locale's language).
    words = {
        "en_US": ("email", "phone", "full_name", "first_name", "last_name", "address", "city",
                  "date_of_birth", "iban", "card_number", "ip_address"),
        "en_GB": ("Email", "Telephone", "Name", "Forename", "Surname", "Address", "Town",
                  "DOB", "IBAN", "CardNumber", "IPAddress"),
        "fr_FR": ("courriel", "telephone", "nom_complet", "prenom", "nom", "adresse", "ville",
                  "date_naissance", "iban", "numero_carte", "adresse_ip"),
        "de_DE": ("E-Mail", "Telefonnummer", "Name", "Vorname", "Nachname", "Anschrift", "Stadt",
                  "Geburtsdatum", "IBAN", "Kreditkarte", "IP-Adresse"),
        "es_ES": ("correo", "telefono", "nombre_completo", "nombre", "apellido", "direccion",
                  "ciudad", "fecha_nacimiento", "iban", "tarjeta", "direccion_ip"),
        "nl_NL": ("email", "telefoon", "naam", "voornaam", "achternaam", "adres", "woonplaats",
                  "geboortedatum", "iban", "kaartnummer", "ip_adres"),
    }[locale]  # fmt: skip
    email, phone, full, first, last, addr, city, dob, iban, card, ip = words
    add(email, [fake.email() for _ in range(n)], "EMAIL_ADDRESS")
    add(phone, [fake.phone_number() for _ in range(n)], "PHONE_NUMBER")
    add(full, [fake.name() for _ in range(n)], "PERSON")
    add(first, [fake.first_name() for _ in range(n)], "PERSON")
    add(last, [fake.last_name() for _ in range(n)], "PERSON")
    add(addr, [fake.address() for _ in range(n)], "LOCATION")
    add(city, [fake.city() for _ in range(n)], "LOCATION")
    add(dob, pd.to_datetime([fake.date_of_birth(minimum_age=18, maximum_age=90) for _ in range(n)]),
        "DATE_OF_BIRTH")  # fmt: skip
    add(iban, [fake.iban() for _ in range(n)], "IBAN_CODE")
    add(card, [fake.credit_card_number(card_type=rng.choice(["visa16", "mastercard", "amex"]))
               for _ in range(n)], "CREDIT_CARD")  # fmt: skip
    add(ip, [fake.ipv4() if rng.random() < 0.8 else fake.ipv6() for _ in range(n)], "IP_ADDRESS")

    # The same kinds of values under meaningless names.
    add("c0", [fake.email() for _ in range(n)], "EMAIL_ADDRESS")
    add("c1", [fake.name() for _ in range(n)], "PERSON")
    add("c2", [fake.phone_number() for _ in range(n)], "PHONE_NUMBER")
    add("c3", [fake.iban() for _ in range(n)], "IBAN_CODE")
    add("c4", [fake.credit_card_number(card_type="visa16") for _ in range(n)], "CREDIT_CARD")
    add("c5", [fake.address().replace("\n", ", ") for _ in range(n)], "LOCATION")
    add("c6", [fake.ipv4_public() for _ in range(n)], "IP_ADDRESS")

    # Locale-specific national ids presidio knows.
    if locale == "en_US":
        add("ssn", [fake.ssn() for _ in range(n)], "US_SSN")
        add("c7", [fake.ssn() for _ in range(n)], "US_SSN")
    if locale == "en_GB":
        add("nhs_number", [nhs_number(rng) for _ in range(n)], "UK_NHS")
        add("c7", [nhs_number(rng) for _ in range(n)], "UK_NHS")
        add("ni_number", [nino(rng) for _ in range(n)], "UK_NINO")
    if locale == "es_ES":
        add("dni", [fake.nif() for _ in range(n)], "ES_NIF")
        add("c7", [fake.nie() for _ in range(n)], "ES_NIE")

    # Sparse, null-heavy and typed positives.
    add("backup_email", _with_nulls([fake.email() for _ in range(n)], 0.9, rng), "EMAIL_ADDRESS")
    add("c8", _with_nulls([fake.phone_number() for _ in range(n)], 0.7, rng), "PHONE_NUMBER")
    add("support_ticket", _text(fake, rng, n, fake.email, 0.01), "EMAIL_ADDRESS")
    add("notes", _text(fake, rng, n, fake.phone_number, 0.03), "PHONE_NUMBER")
    add("card_int", pd.array([int(luhn_complete("4" + "".join(rng.choice(string.digits)
        for _ in range(14)))) for _ in range(n)], dtype="Int64"), "CREDIT_CARD")  # fmt: skip
    add("customer", pd.Categorical([fake.name() for _ in range(n)]), "PERSON")
    add("c9", pd.array([fake.email() for _ in range(n)], dtype="string[pyarrow]"), "EMAIL_ADDRESS")

    # Hard negatives.
    add("customer_id", np.arange(n, dtype="int64") + 100_000, None)
    add("order_number", [luhn_fail(rng) for _ in range(n)], None)
    add("amount", np.round(np.array([rng.uniform(1, 5000) for _ in range(n)]), 2), None)
    add("ratio", np.array([rng.random() for _ in range(n)]), None)
    add("quantity", pd.array([rng.randint(0, 50) if rng.random() > 0.1 else None
                              for _ in range(n)], dtype="Int64"), None)  # fmt: skip
    add("sku", [fake.bothify("SKU-####-??").upper() for _ in range(n)], None)
    add("ean", [fake.ean13() for _ in range(n)], None)
    add("request_id", [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(n)], None)
    add("c10", [fake.md5() for _ in range(n)], None)
    add("c11", [fake.sha256() for _ in range(n)], None)
    add("version", [f"{rng.randint(0, 9)}.{rng.randint(0, 30)}.{rng.randint(0, 99)}"
                    for _ in range(n)], None)  # fmt: skip
    add("created_at", pd.date_range("2023-01-01", periods=n, freq="37min"), None)
    add("updated", [fake.iso8601() for _ in range(n)], None)
    add("signup_date", [fake.date_between("-3y").isoformat() for _ in range(n)], None)
    add("status_code", [rng.choice([200, 201, 301, 404, 500]) for _ in range(n)], None)
    add("status", pd.Categorical([rng.choice(["active", "pending", "closed"]) for _ in range(n)]),
        None)  # fmt: skip
    add("is_active", [rng.random() > 0.5 for _ in range(n)], None)
    add("product_name", [fake.catch_phrase() for _ in range(n)], None)
    add("c12", [f"{fake.color_name()} {rng.choice(['Chair', 'Lamp', 'Desk', 'Sofa'])}"
                for _ in range(n)], None)  # fmt: skip
    add("email_sent", [rng.random() > 0.5 for _ in range(n)], None)
    add("phone_model", [rng.choice(["iPhone 14", "Galaxy S23", "Pixel 8", "Moto G"])
                        for _ in range(n)], None)  # fmt: skip
    add("name_length", np.array([rng.randint(3, 25) for _ in range(n)]), None)
    add("address_verified", [rng.random() > 0.3 for _ in range(n)], None)
    add("description", [fake.paragraph(nb_sentences=2) for _ in range(n)], None)
    add("c13", [rng.randint(10**9, 10**10 - 1) for _ in range(n)], None)
    add("empty", [None] * n, None)
    for column, goods in goods_columns(rng, n).items():
        add(column, goods, None)
    add("brand", [rng.choice(BRANDS) for _ in range(n)], None)
    add("product", [f"{rng.choice(LINE_NAMES)} {rng.choice(GOODS)}" for _ in range(n)], None)
    return LabelledFrame(locale, pd.DataFrame(cols), labels)


def benchmark_frames(n: int = 1000, seed: int = 7) -> list[LabelledFrame]:
    return [locale_frame(loc, n, seed + i) for i, loc in enumerate(LOCALES)]


def speed_frame(n: int = 1_000_000, seed: int = 11) -> pd.DataFrame:
    """20 columns: 7 personal, the rest numbers, categories, uuids and timestamps.

    Personal columns are built from a pool of Faker values repeated to ``n`` rows
    (generating a million Faker values would take minutes, classifying them not).
    """
    fake = Faker(["en_US", "fr_FR", "de_DE"])
    fake.seed_instance(seed)
    rng = np.random.default_rng(seed)
    pool = 20_000

    def spread(values: list[Any]) -> np.ndarray:
        return np.array(values, dtype=object)[rng.integers(0, len(values), n)]

    return pd.DataFrame(
        {
            "email": spread([fake.email() for _ in range(pool)]),
            "name": spread([fake.name() for _ in range(pool)]),
            "phone": spread([fake.phone_number() for _ in range(pool)]),
            "address": spread([fake.address() for _ in range(pool)]),
            "c4": spread([fake.iban() for _ in range(pool)]),
            "card": spread([fake.credit_card_number(card_type="visa16") for _ in range(pool)]),
            "ip": spread([fake.ipv4() for _ in range(pool)]),
            "id": np.arange(n, dtype="int64"),
            "amount": rng.uniform(0, 1000, n).round(2),
            "score": rng.random(n),
            "count": rng.integers(0, 100, n),
            "category": pd.Categorical(rng.choice(["a", "b", "c", "d"], n)),
            "region": pd.Categorical(rng.choice(["north", "south", "east", "west"], n)),
            "uuid": spread([str(uuid.UUID(int=int(x))) for x in rng.integers(0, 2**62, pool)]),
            "created": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 10**7, n), "s"),
            "updated": pd.Timestamp("2024-06-01") + pd.to_timedelta(rng.integers(0, 10**7, n), "s"),
            "flag": rng.random(n) > 0.5,
            "sku": spread([fake.bothify("SKU-####-??") for _ in range(pool)]),
            "qty": rng.integers(0, 10, n).astype("int32"),
            "price": rng.uniform(0, 100, n),
        }
    )


# --- held out from the gazetteer ----------------------------------------------------------------

# Locales whose names and cities are NOT in mlsecops_jupyter/pii/gazetteer.py's
# word lists (it reads en_US, en_GB, en_IE, fr_FR, fr_CH, de_DE, de_AT, es_ES,
# es_MX, nl_NL, nl_BE, it_IT, pt_PT, pt_BR). Frames built from them measure the
# name and place recognition without the circularity of scoring Faker's own
# word lists against Faker's own output. Names shared across languages
# (Michael, Anna) still hit the gazetteer: that is how real data behaves too.
HELD_OUT_LOCALES = ("pl_PL", "sv_SE", "da_DK", "cs_CZ", "fi_FI", "no_NO", "hu_HU", "ro_RO")


def held_out_frame(locale: str, n: int, seed: int) -> LabelledFrame:
    fake = Faker(locale)
    fake.seed_instance(seed)
    rng = random.Random(seed)
    english = Faker("en_US")
    english.seed_instance(seed)
    cols: dict[str, Any] = {}
    labels: dict[str, str | None] = {}

    def add(name: str, values: Any, label: str | None) -> None:
        cols[name] = values
        labels[name] = label

    add("name", [fake.name() for _ in range(n)], "PERSON")
    add("first_name", [fake.first_name() for _ in range(n)], "PERSON")
    add("last_name", [fake.last_name() for _ in range(n)], "PERSON")
    add("city", [fake.city() for _ in range(n)], "LOCATION")
    add("address", [fake.address().replace("\n", ", ") for _ in range(n)], "LOCATION")
    # The same values under meaningless names: the values alone must say it.
    add("c1", [fake.name() for _ in range(n)], "PERSON")
    add("c2", [f"{fake.first_name()} {fake.last_name()}" for _ in range(n)], "PERSON")
    add("c3", [fake.city() for _ in range(n)], "LOCATION")
    # Hard negatives: capitalised words that are not people or places.
    add("product", [english.catch_phrase() for _ in range(n)], None)
    add("c4", [f"{english.color_name()} {rng.choice(['Chair', 'Lamp', 'Desk'])}"
               for _ in range(n)], None)  # fmt: skip
    add("job", [fake.job() for _ in range(n)], None)
    add("c5", [english.word().capitalize() for _ in range(n)], None)
    return LabelledFrame(f"held-out {locale}", pd.DataFrame(cols), labels)


def held_out_frames(n: int = 1000, seed: int = 31) -> list[LabelledFrame]:
    return [held_out_frame(loc, n, seed + i) for i, loc in enumerate(HELD_OUT_LOCALES)]


# --- independent of Faker: mimesis ------------------------------------------------------------

# mimesis ships its own curated locale data (names, towns, streets, phone
# formats, dishes, cars): values the Faker-built word lists were never read
# from. Languages the name lists read, then languages they do not.
INDEPENDENT_LOCALES = ("en", "en-gb", "de", "fr", "es", "it", "nl")
INDEPENDENT_HELD_OUT_LOCALES = ("pl", "cs", "sk", "sv", "da", "no", "fi", "hu", "et")


def independent_frame(locale: str, n: int, seed: int) -> LabelledFrame:
    """Personal columns and hard negatives made with mimesis (needs the bench extra)."""
    from mimesis import Address, Finance, Food, Hardware, Locale, Person, Text, Transport

    where = Locale(locale)
    person = Person(where, seed=seed)
    address = Address(where, seed=seed)
    text = Text(where, seed=seed)
    food = Food(where, seed=seed)
    rng = random.Random(seed)
    transport, finance = Transport(seed=seed), Finance(where, seed=seed)
    hardware = Hardware(seed=seed)
    cols: dict[str, Any] = {}
    labels: dict[str, str | None] = {}

    def add(name: str, values: Any, label: str | None) -> None:
        cols[name] = values
        labels[name] = label

    def full_address() -> str:
        return f"{address.address()}, {address.postal_code()} {address.city()}"

    add("name", [person.full_name() for _ in range(n)], "PERSON")
    add("first_name", [person.first_name() for _ in range(n)], "PERSON")
    add("surname", [person.last_name() for _ in range(n)], "PERSON")
    add("city", [address.city() for _ in range(n)], "LOCATION")
    add("address", [full_address() for _ in range(n)], "LOCATION")
    add("street", [address.address() for _ in range(n)], "LOCATION")
    add("email", [person.email() for _ in range(n)], "EMAIL_ADDRESS")
    add("phone", [person.phone_number() for _ in range(n)], "PHONE_NUMBER")
    # The same kinds of values under meaningless names.
    add("c1", [person.full_name() for _ in range(n)], "PERSON")
    add("c2", [address.city() for _ in range(n)], "LOCATION")
    add("c3", [full_address() for _ in range(n)], "LOCATION")
    add("c4", [person.email() for _ in range(n)], "EMAIL_ADDRESS")
    add("c5", [person.phone_number() for _ in range(n)], "PHONE_NUMBER")
    # Hard negatives: capitalised words that are neither people nor places.
    add("dish", [food.dish() for _ in range(n)], None)
    add("c6", [food.dish() for _ in range(n)], None)
    add("c7", [transport.car() for _ in range(n)], None)
    add("manufacturer", [transport.manufacturer() for _ in range(n)], None)
    add("c8", [transport.manufacturer() for _ in range(n)], None)
    add("company", [finance.company() for _ in range(n)], None)
    add("c9", [finance.company() for _ in range(n)], None)
    add("occupation", [person.occupation() for _ in range(n)], None)
    add("c10", [person.occupation() for _ in range(n)], None)
    add("c11", [text.color() for _ in range(n)], None)
    add("c12", [text.word().capitalize() for _ in range(n)], None)
    add("c13", [hardware.phone_model() for _ in range(n)], None)
    add("c14", [food.drink() for _ in range(n)], None)
    add("c15", [f"{text.color().capitalize()} {rng.choice(GOODS)}" for _ in range(n)], None)
    return LabelledFrame(f"mimesis {locale}", pd.DataFrame(cols), labels)


def independent_frames(
    n: int = 1000, seed: int = 53, locales: tuple[str, ...] = INDEPENDENT_LOCALES
) -> list[LabelledFrame]:
    return [independent_frame(loc, n, seed + i) for i, loc in enumerate(locales)]
