"""One module per `trio-oco` sub-command.

Each module defines `HELP` (one line), `add_arguments(parser)` and `run(args) -> int`
(the exit code). `oco.cli` registers the modules listed in `COMMANDS`.
"""

COMMANDS: tuple[tuple[str, str], ...] = (
    ("check", "oco.commands.check"),
    ("init", "oco.commands.init"),
    ("dev", "oco.commands.dev"),
    ("run", "oco.commands.run"),
    ("start", "oco.commands.start"),
    ("status", "oco.commands.status"),
    ("logs", "oco.commands.logs"),
    ("demo", "oco.commands.demo"),
    ("fake-convex", "oco.commands.fake_convex"),
    ("fake-llm", "oco.commands.fake_llm"),
)
