"""The one error the review actions raise: the message says what to do instead."""

from __future__ import annotations


class ReviewError(Exception):
    """A review action was refused (no reason, a dangerous global unconfirmed, ...).

    Nothing was changed: no event was published, no file written.
    """
