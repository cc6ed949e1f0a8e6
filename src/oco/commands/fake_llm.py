"""`trio-oco fake-llm`: serve the scripted OpenAI-compatible fake LLM for a real OpenCode.

Once listening it prints one JSON line `{"base_url": ..., "opencode_config": {...}}` (put the
config in `OPENCODE_CONFIG_CONTENT`), then serves until SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import signal

import trio

from oco.errors import UsageError

HELP = "serve a scripted fake LLM (OpenAI-compatible) for testing OpenCode offline"


_PROMPTS = "(the fake LLM's scripts)"  # replaced when help is shown: the fakes load only then


class _HelpWithPrompts(argparse.RawDescriptionHelpFormatter):
    """Help whose epilog lists the scripts from `oco.testing._fake_llm.PROMPTS` (so it cannot
    drift from them), imported only when help is shown (the CLI builds every parser at start)."""

    def add_text(self, text: str | None) -> None:
        if text == _PROMPTS:
            from oco.testing._fake_llm import prompts_help

            text = (
                f"{prompts_help()}\n\nPoint OpenCode at it with the config it prints (model fake/fake-model):\n"
                "  trio-oco fake-llm > llm.json &\n"
                '  export OPENCODE_CONFIG_CONTENT="$(jq -c .opencode_config llm.json)"'
            )
        super().add_text(text)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = _HelpWithPrompts
    parser.epilog = _PROMPTS
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: any free one)")


def run(args: argparse.Namespace) -> int:
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be between 0 and 65535, not {args.port}")
    from oco.testing import require_hypercorn

    require_hypercorn("trio-oco fake-llm")
    return trio.run(_serve, args.port)


async def _serve(port: int) -> int:
    from oco.testing import opencode_config, serve_fake_llm

    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        try:
            async with serve_fake_llm(port=port) as llm:
                line = {"base_url": llm.base_url, "opencode_config": opencode_config(llm.base_url)}
                print(json.dumps(line), flush=True)
                async for _ in signals:
                    break
        except OSError as exc:
            raise UsageError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}") from exc
    return 0
