"""The one error type of the metrics package: a one-line reason, shown as is by the CLI."""

from __future__ import annotations


class MetricError(ValueError):
    """Bad input to an evaluation: a missing file, an unknown name, an impossible request."""
