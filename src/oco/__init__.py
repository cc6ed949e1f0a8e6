"""trio-oco: runs OpenCode Orchestrator workers under one Trio supervisor."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("trio-oco")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0"

__all__ = ["__version__"]
