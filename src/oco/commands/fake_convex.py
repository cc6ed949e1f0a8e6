"""`trio-oco fake-convex`: serve the fake Convex backend until SIGINT/SIGTERM.

Once listening it prints exactly one JSON line on stdout: the URL, the web-app user's
`sessionId`, the deployment mode (`dev`, or `prod` with `--prod`), and the workers created
for it (with their tokens), so scripts and other processes can drive a real worker against it.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import logging
import signal
import sys

import trio

from oco.errors import UsageError

HELP = "serve a fake Convex backend (for tests and demos) until interrupted"

log = logging.getLogger("oco.commands.fake_convex")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port (default 0: any free port)")
    parser.add_argument("--workers", type=int, default=1, metavar="N", help="workers to create (default 1)")
    parser.add_argument("--pending", action="store_true", help="leave the workers pending approval")
    parser.add_argument(
        "--prod",
        action="store_true",
        help="answer like a production deployment: errors redacted to 'Server Error', no log lines",
    )


def run(args: argparse.Namespace) -> int:
    try:
        loopback = ipaddress.ip_address(args.host).is_loopback
    except ValueError:
        loopback = args.host == "localhost"
    if not loopback:
        raise UsageError(f"--host must be a loopback address, not {args.host!r}")
    if not 0 <= args.port <= 65535:
        raise UsageError("--port must be between 0 and 65535")
    if args.workers < 0:
        raise UsageError("--workers must be 0 or more")
    from oco.testing import require_hypercorn

    require_hypercorn("trio-oco fake-convex")
    return trio.run(_serve, args)


async def _serve(args: argparse.Namespace) -> int:
    from oco.testing import FakeConvex, serve_fake_convex

    fake = FakeConvex(prod=args.prod)
    workers = [fake.create_worker(approved=not args.pending) for _ in range(args.workers)]
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        try:
            async with serve_fake_convex(fake, host=args.host, port=args.port) as server:
                line = {
                    "url": server.url,
                    "mode": "prod" if args.prod else "dev",
                    "user_session": fake.user_session,
                    "workers": [
                        {"token": w.token, "machineId": w.machine_id, "workerId": w.worker_id}
                        for w in workers
                    ],
                }
                sys.stdout.write(json.dumps(line) + "\n")
                sys.stdout.flush()
                async for signum in signals:
                    log.info("fake Convex stopping on %s", signal.Signals(signum).name)
                    break
        except* OSError as group:
            reason: BaseException = group
            while isinstance(reason, BaseExceptionGroup):  # nested nurseries nest groups
                reason = reason.exceptions[0]
            detail = getattr(reason, "strerror", None) or str(reason)
            raise UsageError(f"cannot listen on {args.host}:{args.port}: {detail}") from None
    return 0
