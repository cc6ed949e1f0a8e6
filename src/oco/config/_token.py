"""Parsing a worker token `machine_<id>:worker_<id>:secret_<s>` into a `Token`."""

from __future__ import annotations

import re

from oco.config._errors import TokenError
from oco.config._model import Token

TOKEN_FORMAT = "machine_<id>:worker_<id>:secret_<secret>"

# The example token in workers.template.jsonc: it parses, but must never be used.
EXAMPLE_TOKEN = "machine_EXAMPLE:worker_EXAMPLE:secret_REPLACE_ME"

_PART = re.compile(r"[A-Za-z0-9_-]+")
_PREFIXES = ("machine_", "worker_", "secret_")
_NAMES = ("machine", "worker", "secret")


def parse_token(text: str) -> Token:
    """Parse a worker token, trimming surrounding whitespace.

    Raises `TokenError` naming the faulty part; the message never contains the token text.
    """
    if not isinstance(text, str):
        raise TokenError(f"token must be a string like {TOKEN_FORMAT}")
    text = text.strip()
    if not text:
        raise TokenError("token is empty")
    parts = text.split(":")
    if len(parts) != 3:
        raise TokenError(f"token must have 3 ':'-separated parts like {TOKEN_FORMAT} (got {len(parts)})")
    values = []
    for part, prefix, name in zip(parts, _PREFIXES, _NAMES, strict=True):
        if not part.startswith(prefix):
            raise TokenError(f"token's {name} part must start with '{prefix}' ({TOKEN_FORMAT})")
        value = part[len(prefix) :]
        if not _PART.fullmatch(value):
            raise TokenError(
                f"token's {name} id must be 1 or more of A-Z a-z 0-9 _ - ({TOKEN_FORMAT})"
                if name != "secret"
                else f"token's secret must be 1 or more of A-Z a-z 0-9 _ - ({TOKEN_FORMAT})"
            )
        values.append(value)
    token = Token(machine_id=values[0], worker_id=values[1], secret=values[2])
    if token.reveal() == EXAMPLE_TOKEN:
        raise TokenError("replace the example token with your worker's token from the web app")
    return token
