"""The environment OpenCode runs with, built on purpose: the user's, minus trio-oco's own secrets.

OpenCode hands its whole environment to the agent's tools (the bash tool spawns with
`{...process.env}`), so whatever it inherits, the model can print into a reply. It needs PATH,
HOME, XDG_*, the provider keys the user set and whatever their tools use; it must not get a
worker token (`WORKER_TOKEN` in `trio-oco dev`, or any variable holding one), a configured
secret, or trio-oco's `OCO_*` control variables. Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

# A worker token anywhere in a value (config/_token.py: machine_<id>:worker_<id>:secret_<s>).
_WORKER_TOKEN = re.compile(r"machine_[A-Za-z0-9_-]+:worker_[A-Za-z0-9_-]+:secret_[A-Za-z0-9_-]+")
# Names that are ours whatever they hold.
_OWN_NAMES = frozenset({"WORKER_TOKEN"})
_OWN_PREFIX = "OCO_"
# We set these per start; a value inherited from the user's shell must not override ours.
_SERVER_AUTH = frozenset({"OPENCODE_SERVER_PASSWORD", "OPENCODE_SERVER_USERNAME"})
# Shorter configured secrets are not searched for inside values: they would match by chance.
MIN_SECRET_CHARS = 8


def opencode_environment(base: Mapping[str, str], secrets: Iterable[str] = ()) -> dict[str, str]:
    """`base` without trio-oco's variables and without any variable whose value holds a worker
    token or one of `secrets` (the configured tokens and their secrets)."""
    hidden = [s for s in secrets if s and len(s) >= MIN_SECRET_CHARS]
    kept: dict[str, str] = {}
    for name, value in base.items():
        if name in _OWN_NAMES or name.startswith(_OWN_PREFIX) or name in _SERVER_AUTH:
            continue
        if _WORKER_TOKEN.search(value) or any(secret in value for secret in hidden):
            continue
        kept[name] = value
    return kept
