"""trio-oco: runs OpenCode Orchestrator workers under one Trio supervisor."""

__all__ = ["__version__"]


def __getattr__(name: str) -> str:
    # `__version__` is read from the installed metadata on first use: importlib.metadata costs
    # tens of milliseconds, and `trio-oco status` should not pay them to print a table.
    if name != "__version__":
        raise AttributeError(f"module 'oco' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        value = version("trio-oco")
    except PackageNotFoundError:  # running from a source tree without an install
        value = "0.0.0"
    globals()["__version__"] = value
    return value
