"""The one error type of the bundle package."""

from __future__ import annotations

from orchestrator.errors import PlantsweepError


class BundleError(PlantsweepError):
    """A pattern bundle (or a key) cannot be built, verified or imported.

    ``path`` names the bundle (or key file) so the CLI line says which file was refused.
    """
