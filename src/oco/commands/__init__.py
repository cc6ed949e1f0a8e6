"""One module per `trio-oco` sub-command.

Each module defines `HELP` (one line), `add_arguments(parser)` and `run(args) -> int`
(the exit code). `oco.cli` registers the modules listed in `COMMANDS`: `(name, module, help)`,
the help repeated here so that `trio-oco --help` lists every command without importing any
(only the chosen command's module is imported: `trio-oco status` answers fast;
`tests/test_cli_imports.py` pins that each help here is its module's `HELP`). A two-item entry
`(name, module)` also works: its module is then imported for its `HELP`.
"""

COMMANDS: tuple[tuple[str, ...], ...] = (
    ("check", "oco.commands.check", "validate workers.json and show which workers would run"),
    ("init", "oco.commands.init", "write a workers.json template (or, on a terminal, one worker entry)"),
    (
        "dev",
        "oco.commands.dev",
        "run one worker from .env in the current directory (first-run setup on a terminal)",
    ),
    (
        "run",
        "oco.commands.run",
        "run every enabled worker from workers.json under one supervisor (production mode)",
    ),
    (
        "start",
        "oco.commands.start",
        "start the orchestrator (run, else dev), or with NAME start a stopped worker of a running one",
    ),
    (
        "status",
        "oco.commands.status",
        "show the running orchestrators' workers (exit 0 all ready, 1 not, 3 none running)",
    ),
    (
        "logs",
        "oco.commands.logs",
        "print a worker's log (or all, merged by time); -f follows it like tail -F",
    ),
    ("restart", "oco.commands.restart", "restart one worker (or all) of the running orchestrator"),
    (
        "stop",
        "oco.commands.stop",
        "stop one worker (or all) of the running orchestrator; it stays stopped until started",
    ),
    (
        "reload",
        "oco.commands.reload",
        "re-read the workers file of the running orchestrator (like SIGHUP) and say what changed",
    ),
    (
        "demo",
        "oco.commands.demo",
        "show the whole product offline: fake Convex and LLM, two workers, a real OpenCode",
    ),
    (
        "fake-convex",
        "oco.commands.fake_convex",
        "serve a fake Convex backend (for tests and demos) until interrupted",
    ),
    (
        "fake-llm",
        "oco.commands.fake_llm",
        "serve a scripted fake LLM (OpenAI-compatible) for testing OpenCode offline",
    ),
)
