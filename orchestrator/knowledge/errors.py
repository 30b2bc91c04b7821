"""The one error type of the knowledge package."""

from __future__ import annotations

from orchestrator.errors import PlantsweepError


class KnowledgeError(PlantsweepError):
    """Knowledge data (sources, bundle or installed copy) cannot be read, built or trusted."""
