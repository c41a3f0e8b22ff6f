"""Personal data in frames: sampled, matched with presidio's recognizers, reported masked."""

from __future__ import annotations

from mlsecops_jupyter.pii.report import ColumnFinding, EntityEvidence, PiiReport
from mlsecops_jupyter.pii.scan import DEFAULT_SAMPLE_SIZE, scan_frame

__all__ = ["DEFAULT_SAMPLE_SIZE", "ColumnFinding", "EntityEvidence", "PiiReport", "scan_frame"]
