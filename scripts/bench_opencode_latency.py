"""How long OpenCode itself takes from `prompt_async` to its request at the LLM (warm server).

This is the part of "sendMessage → first request at the fake LLM" that trio-oco cannot
shorten; `scripts/bench_realtime.py` measures the part before it (the worker noticing the
message). Usage: `.venv/bin/python scripts/bench_opencode_latency.py [--samples N]`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import trio

from oco.opencode import find_opencode_bin, open_opencode_server
from oco.testing import opencode_env, serve_fake_llm

REPO = Path(__file__).resolve().parents[1]


async def measure(samples: int, root: Path) -> list[float]:
    project = root / "project"
    project.mkdir()
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    opencode = find_opencode_bin(
        environ={**os.environ, "OCO_OPENCODE_BIN": os.environ.get("OCO_OPENCODE_BIN") or str(REPO / "node_modules/.bin/opencode")}
    )
    async with serve_fake_llm() as llm:
        env = opencode_env(root / "home", llm.base_url, base=os.environ)
        async with open_opencode_server(opencode, project, env=env, start_timeout=60) as server:
            session = await server.client.create_session("latency")
            seconds = []
            for i in range(samples + 2):  # the first two turns warm OpenCode up
                before = len(llm.requests)
                sent = time.monotonic()
                await server.client.prompt_async(session, f"ECHO sample {i}", "fake/fake-model")
                await llm.wait_for_requests(before + 1)
                seconds.append(time.monotonic() - sent)
                with trio.fail_after(60):
                    while session in await server.client.session_status():
                        await trio.sleep(0.05)  # OpenCode has no "turn over" call; bounded by the deadline
            return seconds[2:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="oco-latency-") as scratch:
        seconds = sorted(trio.run(measure, args.samples, Path(scratch)))
    ms = [s * 1000 for s in seconds]
    p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
    print("| figure | value |\n| --- | ---: |")
    print(f"| opencode_prompt_to_llm_p50_ms | {statistics.median(ms):.0f} |")
    print(f"| opencode_prompt_to_llm_p95_ms | {p95:.0f} |")
    print(f"| opencode_prompt_to_llm_min_ms | {ms[0]:.0f} |")


if __name__ == "__main__":
    main()
