"""Validation of the three roster uploads (public names re-exported from the modules)."""

from abacus.roster.validation.validate import *  # noqa: F403
from abacus.roster.validation.validate import __all__  # noqa: F401
