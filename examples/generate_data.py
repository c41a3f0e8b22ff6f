"""Generate the example notebook's data: realistic, entirely synthetic customers.

Every value comes from Faker with a fixed seed, so the file is the same on every
machine and no real person is in it. Run from the repository root:

    .venv/bin/python examples/generate_data.py
"""

from __future__ import annotations

import csv
import random
from datetime import date
from pathlib import Path

from faker import Faker

ROWS = 400
SEED = 20261126
OUT = Path(__file__).parent / "data" / "customers.csv"

COLUMNS = [
    "customer_id",
    "full_name",
    "email",
    "phone",
    "street_address",
    "city",
    "country",
    "date_of_birth",
    "iban",
    "credit_card",
    "signup_date",
    "plan",
    "monthly_spend",
    "support_tickets",
    "churned",
]


def customer(fake: Faker, rng: random.Random, index: int) -> dict[str, object]:
    spend = round(rng.lognormvariate(3.4, 0.6), 2)
    tickets = min(12, int(rng.expovariate(0.7)))
    # Fixed date ranges (not "today") keep the file identical from day to day.
    # Churn depends on spend and tickets so the example model has something to learn.
    churn_odds = 0.08 + 0.05 * tickets - 0.002 * spend
    return {
        "customer_id": f"C{index:05d}",
        "full_name": fake.name(),
        "email": fake.email(),
        "phone": fake.phone_number(),
        "street_address": fake.street_address(),
        "city": fake.city(),
        "country": fake.current_country_code(),
        "date_of_birth": fake.date_between(date(1940, 1, 1), date(2007, 12, 31)).isoformat(),
        "iban": fake.iban(),
        "credit_card": fake.credit_card_number(),
        "signup_date": fake.date_between(date(2019, 1, 1), date(2026, 10, 31)).isoformat(),
        "plan": rng.choice(["basic", "standard", "premium"]),
        "monthly_spend": spend,
        "support_tickets": tickets,
        "churned": int(rng.random() < max(0.02, min(0.9, churn_odds))),
    }


def main() -> None:
    fake = Faker(["en_US", "en_GB", "fr_FR", "de_DE"])
    Faker.seed(SEED)
    rng = random.Random(SEED)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with OUT.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        for index in range(1, ROWS + 1):
            writer.writerow(customer(fake, rng, index))
    print(f"wrote {ROWS} synthetic customers to {OUT}")


if __name__ == "__main__":
    main()
