"""Dataset access tracking: what the kernel read and wrote, with digests, under a policy."""

from __future__ import annotations
