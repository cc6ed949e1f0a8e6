"""Finding the opencode binary, its version, and listing models with `opencode models`.

trio-oco is verified with one opencode version (`VERIFIED_VERSION`, the one package.json pins
for the tests and the demo). Another version may well work; `version_warning` says so at start,
a warning and never a refusal. `opencode --version` takes most of a second (node starts), so
its answer is cached in the state directory per binary (path, size, mtime): a start with the
same binary costs one `stat`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import threading
from collections.abc import Mapping
from pathlib import Path

import trio

from oco._private import write_private_file
from oco._text import external
from oco.domain import ModelInfo

from ._child import MAX_OUTPUT_BYTES, OutputTooLarge, run_bounded
from ._environment import opencode_environment
from ._errors import OpenCodeError, OpenCodeNotFound
from ._startup import start_ticket

log = logging.getLogger("oco.opencode")

#: The opencode-ai version trio-oco's tests, demo and benchmarks ran against (package.json).
VERIFIED_VERSION = "1.18.33"
VERSION_TIMEOUT_S = 10.0
VERSION_CACHE_FILE = "opencode-version.json"


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


# A listing is background work (the web app already shows the last list): it runs this many
# steps below us, so a connect's re-listing (an OpenCode start's worth of CPU) does not slow the
# turn that usually follows it. 5 leaves it a quarter of a contended core, well inside its timeout.
LISTING_NICE = 5


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
    ticket = await start_ticket(child_env, server=False)  # a listing takes no server start slot
    try:
        result = await run_bounded(
            command, cwd=directory, env=child_env, timeout=timeout, max_output=max_output, nice=LISTING_NICE
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


def version_warning(version: str, verified: str = VERIFIED_VERSION) -> str | None:
    """What to tell a user whose opencode reports `version` (pure): None when it is the one
    trio-oco was verified with (a leading `v` and surrounding space do not count)."""
    if version.strip().removeprefix("v") == verified:
        return None
    return (
        f"opencode {version.strip() or '(no version printed)'} differs from {verified}, the version "
        f"trio-oco was verified with; it may work, and if turns fail, try `npm i -g opencode-ai@{verified}`"
    )


def opencode_version(bin: str, timeout: float = VERSION_TIMEOUT_S) -> str:
    """`opencode --version`'s answer (its last line), run in its own process group and killed
    whole after `timeout`; `OpenCodeError` when it cannot run, fails or prints nothing."""
    try:
        child = subprocess.Popen(
            [bin, "--version"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=opencode_environment(os.environ),
            start_new_session=True,
        )
    except OSError as exc:
        raise OpenCodeError(None, f"cannot run {bin}: {exc.strerror or exc}") from None
    try:
        out, err = child.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise OpenCodeError(None, f"`{bin} --version` gave no answer within {timeout:g} s") from None
    finally:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.pid, signal.SIGKILL)  # whatever it spawned ends with it
        child.wait()
    lines = out.decode(errors="replace").strip().splitlines()
    if child.returncode != 0 or not lines:
        tail = err.decode(errors="replace").strip().splitlines()
        detail = external(tail[-1], 300) if tail else "no output"
        raise OpenCodeError(None, f"`{bin} --version` exited with {child.returncode}: {detail}")
    return external(lines[-1].strip(), 100)


def _fingerprint(bin: str) -> list[object]:
    real = os.path.realpath(bin)
    info = os.stat(real)
    return [real, info.st_size, info.st_mtime_ns]


def known_opencode_version(bin: str, cache_dir: Path | None) -> str | None:
    """The version remembered for this very binary (same real path, size and mtime: a new
    install or upgrade changes them), or None; costs a `stat` and a small read."""
    if cache_dir is None:
        return None
    try:
        known = json.loads((Path(cache_dir) / VERSION_CACHE_FILE).read_text(encoding="utf-8"))
        if isinstance(known, dict) and known.get("binary") == _fingerprint(bin):
            return str(known["version"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


def cached_opencode_version(bin: str, cache_dir: Path | None) -> str:
    """`opencode_version(bin)`, remembered in `cache_dir` for this binary. A cache that cannot
    be read or written is only slower."""
    known = known_opencode_version(bin, cache_dir)
    if known is not None:
        return known
    version = opencode_version(bin)
    if cache_dir is not None:
        with contextlib.suppress(OSError):
            record = {"binary": _fingerprint(bin), "version": version}
            write_private_file(Path(cache_dir) / VERSION_CACHE_FILE, json.dumps(record) + "\n", durable=False)
    return version


def _say_version(bin: str, cache_dir: Path | None) -> None:
    try:
        version = cached_opencode_version(bin, cache_dir)
    except OpenCodeError as exc:
        # INFO: if this binary is broken, OpenCode's own start says so at the first turn.
        log.info(
            "could not tell the opencode version (%s); trio-oco was verified with %s",
            exc.summary,
            VERIFIED_VERSION,
        )
        return
    warning = version_warning(version)
    if warning is not None:
        log.warning("%s (%s)", warning, bin)


def warn_if_unverified(bin: str, cache_dir: Path | None) -> threading.Thread | None:
    """At start: one WARNING when `bin`'s version is not `VERIFIED_VERSION` (the workers start
    all the same); one INFO line when it cannot be told.

    A version remembered for this binary is said at once. Otherwise `opencode --version` (most
    of a second, several on a busy machine) runs in a thread beside the start, which it does
    not delay; the caller may `join` the returned thread briefly before it exits so the line
    is not lost. Nothing is said twice: the answer is cached for the next start.
    """
    if known_opencode_version(bin, cache_dir) is not None:
        _say_version(bin, cache_dir)
        return None
    thread = threading.Thread(
        target=_say_version, args=(bin, cache_dir), name="opencode --version", daemon=True
    )
    thread.start()
    return thread
