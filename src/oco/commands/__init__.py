"""One module per `trio-oco` sub-command.

Each module defines `HELP` (one line), `add_arguments(parser)` and `run(args) -> int`
(the exit code). `oco.cli` registers the modules listed in `COMMANDS`, importing only the
chosen one (`trio-oco status` answers fast); `--help` reads each `HELP = "..."` line from the
module's source instead, so keep `HELP` a one-line string literal.
"""

COMMANDS: tuple[tuple[str, str], ...] = (
    ("check", "oco.commands.check"),
    ("init", "oco.commands.init"),
    ("dev", "oco.commands.dev"),
    ("run", "oco.commands.run"),
    ("start", "oco.commands.start"),
    ("status", "oco.commands.status"),
    ("logs", "oco.commands.logs"),
    ("restart", "oco.commands.restart"),
    ("stop", "oco.commands.stop"),
    ("reload", "oco.commands.reload"),
    ("demo", "oco.commands.demo"),
    ("fake-convex", "oco.commands.fake_convex"),
    ("fake-llm", "oco.commands.fake_llm"),
)
