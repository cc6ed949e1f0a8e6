"""Validation of single values (Convex URL, working directory): pure rules, clear messages."""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path
from urllib.parse import urlsplit

# The template's example URL: syntactically fine, but never a real deployment.
EXAMPLE_CONVEX_URL = "https://your-deployment.convex.cloud"


class ValueProblem(ValueError):
    """A value breaks a rule; `str()` is the message shown after the JSON path or key."""


_SECRET = re.compile(r"(secret_)\S*")


def _shown(value: str) -> str:
    """A user's value fit for a one-line message: control characters escaped, length capped.

    A worker token pasted into the wrong field must not be echoed: its secret is hidden.
    """
    value = _SECRET.sub(r"\1(hidden)", value)
    if not value.isprintable():
        value = repr(value)[1:-1]
    return value if len(value) <= 80 else value[:77] + "..."


def is_loopback_host(host: str) -> bool:
    """True for localhost, 127.0.0.0/8 and ::1: the only hosts plain http is allowed to."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def normalise_convex_url(text: str) -> str:
    """Check a Convex deployment URL and return it as `scheme://host[:port]`.

    https only, except http for loopback hosts (local backends, tests); nothing after the
    host but an optional "/"; no credentials, query or fragment.
    """
    if not isinstance(text, str):
        raise ValueProblem("must be a string like https://<deployment>.convex.cloud")
    value = text.strip()
    if not value:
        raise ValueProblem("is empty; expected https://<deployment>.convex.cloud")
    try:
        parts = urlsplit(value)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        raise ValueProblem(f"is not a valid URL (got {_shown(value)})") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not host:
        raise ValueProblem(
            f"must be an https:// URL like https://<deployment>.convex.cloud (got {_shown(value)})"
        )
    if scheme == "http" and not is_loopback_host(host):
        raise ValueProblem(f"must use https (got {_shown(value)})")
    if parts.username is not None or parts.password is not None:
        raise ValueProblem("must not contain a user name or password")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueProblem(f"must have no path, query or fragment (got {_shown(value)})")
    shown_host = f"[{host}]" if ":" in host else host.lower()
    url = f"{scheme}://{shown_host}" + (f":{port}" if port is not None else "")
    if url == EXAMPLE_CONVEX_URL:
        raise ValueProblem("replace the example URL with your Convex deployment's URL")
    return url


def resolve_working_directory(text: str, base: Path) -> Path:
    """Expand `~`/`~user`, resolve a relative path against `base`, and require a directory.

    Returns the canonical absolute path (symlinks resolved), which is what OpenCode reports.
    """
    if not isinstance(text, str):
        raise ValueProblem("must be a string (a directory path)")
    value = text.strip()
    if not value:
        raise ValueProblem("is empty; expected a directory path")
    if "\0" in value:
        raise ValueProblem("must not contain a NUL character")
    expanded = os.path.expanduser(value)
    if expanded.startswith("~"):
        user = expanded[1:].split("/", 1)[0]
        raise ValueProblem(f"cannot expand ~{_shown(user)}: no such user")
    path = Path(base) / expanded  # an absolute `expanded` replaces `base`
    try:
        resolved = path.resolve(strict=True)
    except (OSError, RuntimeError):  # missing, dangling symlink, loop, permission
        raise ValueProblem(f"does not exist: {_shown(str(path))}") from None
    if not resolved.is_dir():
        raise ValueProblem(f"is not a directory: {_shown(str(path))}")
    return resolved
