"""Masked examples: the shape of a value, never the value.

``john.doe@example.com`` -> ``j***@e***.com``; a card keeps only its last four
digits (``**** **** **** 1111``, as on a receipt); names keep initials
(``J*** D***``); every other value keeps its separators and initials only.
"""

from __future__ import annotations

import re

_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)


def _initial(word: str) -> str:
    return word[0] + "***"


def mask_email(value: str) -> str:
    local, _, domain = value.rpartition("@")
    labels = domain.split(".")
    suffix = labels[-1] if len(labels) > 1 else ""
    masked_domain = _initial(labels[0]) if labels and labels[0] else "***"
    masked = f"{_initial(local) if local else '***'}@{masked_domain}"
    return f"{masked}.{suffix}" if suffix else masked


def mask_digits(value: str, keep_last: int = 0) -> str:
    """Every digit becomes ``*`` except the last ``keep_last``; letters become ``*`` too."""
    total = sum(c.isalnum() for c in value)
    keep_from = total - keep_last
    out = []
    seen = 0
    for c in value:
        if c.isalnum():
            out.append(c if seen >= keep_from and c.isdigit() and keep_last else "*")
            seen += 1
        else:
            out.append(c)
    return "".join(out)


def mask_words(value: str) -> str:
    """``Jane Doe`` -> ``J*** D***``; ``12 rue de la Paix`` -> ``** r*** d*** l*** P***``."""
    text = _WORD.sub(lambda m: _initial(m.group()), value)
    return re.sub(r"\d", "*", text)


def mask_iban(value: str) -> str:
    compact = value.replace(" ", "")
    return compact[:2] + mask_digits(value[2:]) if len(compact) > 4 else mask_digits(value)


def mask(value: str, entity: str) -> str:
    value = value.strip().replace("\n", " ")
    if len(value) > 80:
        value = value[:80]
    if entity == "EMAIL_ADDRESS" and "@" in value:
        masked = mask_email(value)
    elif entity == "CREDIT_CARD":
        masked = mask_digits(value, keep_last=4)
    elif entity == "IBAN_CODE":
        masked = mask_iban(value)
    elif entity in ("PERSON", "LOCATION"):
        masked = mask_words(value)
    else:
        masked = mask_digits(value)
    # A value too short to hide behind its shape is replaced whole.
    if value and value in masked:
        return "*" * min(len(value), 8)
    return masked
