"""Finding the opencode binary, and listing models with `opencode models` (no server kept up)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path

import trio

from oco._text import external
from oco.domain import ModelInfo

from ._child import MAX_OUTPUT_BYTES, OutputTooLarge, run_bounded
from ._environment import opencode_environment
from ._errors import OpenCodeError, OpenCodeNotFound
from ._startup import start_ticket


def find_opencode_bin(configured: str | None = None, environ: Mapping[str, str] = os.environ) -> str:
    """settings `opencode_bin` > `$OCO_OPENCODE_BIN` > `opencode` on PATH, else `OpenCodeNotFound`."""
    for candidate in (configured, environ.get("OCO_OPENCODE_BIN")):
        if candidate:
            found = shutil.which(os.path.expanduser(candidate), path=environ.get("PATH"))
            if found:
                return found
            raise OpenCodeNotFound()
    found = shutil.which("opencode", path=environ.get("PATH"))
    if not found:
        raise OpenCodeNotFound()
    return found


def parse_models_output(text: str) -> list[ModelInfo]:
    """`opencode models [--verbose]` output → ModelInfo list (pure).

    Plain output is one `provider/model` per line; `--verbose` follows each id with a JSON
    object whose `name` is the display name. Ids may hold several slashes.
    """
    decoder = json.JSONDecoder()
    models: dict[str, ModelInfo] = {}
    last: str | None = None
    pos = 0
    while pos < len(text):
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            break
        if text[pos] == "{":
            try:
                meta, pos = decoder.raw_decode(text, pos)
            except ValueError:
                pos = text.find("\n", pos) + 1 or len(text)
                continue
            if last and isinstance(meta, dict) and meta.get("name"):
                models[last] = ModelInfo(id=last, name=str(meta["name"]), provider=models[last].provider)
            continue
        end = text.find("\n", pos)
        end = len(text) if end < 0 else end
        line = text[pos:end].strip()
        pos = end + 1
        provider, sep, model_id = line.partition("/")
        if sep and provider and model_id and " " not in line:
            models[line] = ModelInfo(id=line, name=model_id, provider=provider)
            last = line
        else:
            last = None
    return sorted(models.values(), key=lambda m: m.id)


async def list_models_cli(
    bin: str,
    directory: Path,
    env: Mapping[str, str] | None = None,
    timeout: float = 30.0,
    *,
    verbose: bool = True,
    max_output: int = MAX_OUTPUT_BYTES,
) -> list[ModelInfo]:
    """Run `opencode models` in `directory` (so project config counts) with a deadline.

    `verbose` adds display names (the plain listing has only ids). It runs in its own process
    group, killed whole when the call ends (`run_bounded`); more than `max_output` bytes of
    output is an error.
    """
    command = [bin, "models"] + (["--verbose"] if verbose else [])
    child_env = opencode_environment(os.environ if env is None else env)
    # It migrates OpenCode's database like a server start does (see _startup).
    ticket = await start_ticket(child_env)
    try:
        result = await run_bounded(
            command, cwd=directory, env=child_env, timeout=timeout, max_output=max_output
        )
        if result.returncode == 0:
            ticket.succeeded()
    except trio.TooSlowError:
        raise OpenCodeError(None, f"`opencode models` gave no answer within {timeout:g} s") from None
    except OutputTooLarge:
        raise OpenCodeError(
            None, f"`opencode models` printed more than {max_output // (1024 * 1024)} MiB; stopped it"
        ) from None
    except OSError as exc:
        raise OpenCodeError(None, f"cannot run {bin}: {exc.strerror or exc}") from exc
    finally:
        ticket.release()
    if result.returncode != 0:
        lines = result.stderr_tail.decode(errors="replace").strip().splitlines()
        last = external(lines[-1], 300) if lines else ""
        raise OpenCodeError(None, f"`opencode models` exited with {result.returncode}: {last}")
    return parse_models_output(result.stdout.decode(errors="replace"))
