"""Request-level rules of Convex's HTTP API, for the fake backend: pure checks, no I/O.

Each refusal is an HTTP 400 `{"code", "message"}` with Convex's own wording
(get-convex/convex-backend: `crates/common/src/http/extract.rs` for bodies,
`crates/common/src/version.rs` for the `Convex-Client` header, `crates/local_backend/src/parse.rs`
for function paths, `crates/value/src/export.rs` for `format`).
"""

from __future__ import annotations

import json
import re
from typing import Any

import attrs


class BadRequest(Exception):
    """Answer HTTP `status` with `{"code", "message"}` (and `headers`) instead of running."""

    def __init__(
        self, code: str, message: str, *, status: int = 400, headers: tuple[tuple[str, str], ...] = ()
    ) -> None:
        self.code = code
        self.message = message
        self.status = status
        self.headers = headers
        super().__init__(message)


# -- the Convex-Client header --------------------------------------------------------------

# semver.org's regular expression for SemVer 2.0 (what the Rust `semver` crate accepts).
_NUM = r"0|[1-9]\d*"
_PRE_ID = r"(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)"
SEMVER = re.compile(
    rf"(?P<major>{_NUM})\.(?P<minor>{_NUM})\.(?P<patch>{_NUM})"
    rf"(?:-(?P<pre>{_PRE_ID}(?:\.{_PRE_ID})*))?"
    r"(?:\+(?P<build>[0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?"
)
_U64 = 2**64 - 1

# crates/common/deprecation.json: versions at or below `unsupported` are refused.
_UNSUPPORTED = {"npm": "0.19.1", "python": "0.0.2", "rust": "0.0.1"}
_UPGRADE_REQUIRED = {"npm": "0.19.1", "python": "0.2.0", "rust": "0.0.1"}
_CLIENT_TYPES = {
    "npm": "npm",
    "npm-cli": "npm",
    "actions": "npm",
    "python": "python",
    "python-convex": "python",
    "rust": "rust",
}
_DISPLAY = {"npm-cli": "npm-cli", "actions": "actions", "python-convex": "python"}
_UPGRADE = {
    "npm": "Update your Convex npm version with `npx convex update` or `npm update`.",
    "python": "Update your Convex python version with `pip install --upgrade convex`.",
    "rust": "Update your Convex rust version with `cargo update -p convex` or by updating `Cargo.toml`.",
}


def parse_semver(text: str) -> tuple[int, int, int, str, str] | None:
    """`text` as (major, minor, patch, pre-release, build) if it is strict SemVer 2.0."""
    match = SEMVER.fullmatch(text)
    if match is None:
        return None
    core = int(match["major"]), int(match["minor"]), int(match["patch"])
    if any(n > _U64 for n in core):
        return None
    return (*core, match["pre"] or "", match["build"] or "")


def _key(version: tuple[int, int, int, str, str]) -> tuple[Any, ...]:
    """SemVer order as the Rust crate sorts (build metadata after none, pre-release before)."""

    def ids(text: str) -> tuple[tuple[int, Any], ...]:
        return tuple((0, int(p)) if p.isdigit() else (1, p) for p in text.split(".")) if text else ()

    major, minor, patch, pre, build = version
    return (major, minor, patch, (1,) if not pre else (0, ids(pre)), ids(build))


@attrs.frozen
class ClientVersion:
    """A parsed `Convex-Client` header: the client name and its SemVer (None if unrecognised)."""

    client: str
    version: tuple[int, int, int, str, str] | None
    version_text: str


def parse_client_version(header: str) -> ClientVersion | None:
    """Convex's split: the longest suffix (of `-` parts) that is SemVer is the version.

    None when the header has no `-` at all, the only shape real Convex refuses."""
    parts = header.split("-")
    if len(parts) < 2:
        return None
    for n in range(1, len(parts)):
        text = "-".join(parts[n:])
        if (version := parse_semver(text)) is not None:
            return ClientVersion("-".join(parts[:n]).lower(), version, text)
    return ClientVersion(parts[0].lower(), None, "-".join(parts[1:]))


def check_client_version(header: str | None, *, strict: bool) -> tuple[tuple[str, str], ...]:
    """Refuse a bad `Convex-Client` header (`BadRequest`); returns deprecation headers to add.

    Real Convex refuses only a header with no `-` (`InvalidClientVersion`) and a known client
    (npm, python, rust) at an unsupported version (`ClientVersionUnsupported`); since
    April 2024 it accepts `<name>-<anything>`. `strict` also refuses what is not
    `<name>-<semver>` (non-empty name), which is what a client should send anyway.
    """
    if header is None:
        return ()
    parsed = parse_client_version(header)
    if parsed is None or (strict and (parsed.version is None or not parsed.client)):
        raise BadRequest(
            "InvalidClientVersion",
            f"Failed to parse client version string: '{header}'. Expected format is "
            "{client_name}-{semver}, e.g. my-esolang-client-0.0.1",
        )
    family = _CLIENT_TYPES.get(parsed.client)
    if family is None:
        return ()
    name = _DISPLAY.get(parsed.client, family)

    def at_or_below(threshold: str) -> bool:
        limit = parse_semver(threshold)
        assert limit is not None
        return parsed.version is None or _key(parsed.version) <= _key(limit)

    instructions = _UPGRADE[family]
    if at_or_below(_UNSUPPORTED[family]):
        message = (
            f"The Convex {name} package at version {parsed.version_text} is no longer "
            f"supported. {instructions}"
        )
        raise BadRequest(
            "ClientVersionUnsupported",
            message,
            headers=(
                ("x-convex-deprecation-state", "Unsupported"),
                ("x-convex-deprecation-message", message),
            ),
        )
    if at_or_below(_UPGRADE_REQUIRED[family]):
        message = (
            f"The Convex {name} package at {parsed.version_text} is deprecated and will no "
            "longer be supported soon. When this version is no longer supported, requests to "
            "Convex will fail, so it is best to upgrade and redeploy your application as soon "
            f"as possible. {instructions}"
        )
        return (("x-convex-deprecation-state", "UpgradeRequired"), ("x-convex-deprecation-message", message))
    return ()


def sync_path_version_problem(version: str) -> str | None:
    """The 400 text for `/api/<version>/sync` when `version` is not SemVer, else None."""
    if parse_semver(version) is None:
        return f"Failed to parse client version: unexpected character in version {version!r}"
    return None


# -- bodies ---------------------------------------------------------------------------------


def _is_json(content_type: str | None) -> bool:
    if content_type is None:
        return False
    mime = content_type.split(";", 1)[0].strip().lower()
    return mime == "application/json" or (mime.startswith("application/") and mime.endswith("+json"))


def _position(text: str, index: int) -> str:
    line = text.count("\n", 0, index) + 1
    column = index - (text.rfind("\n", 0, index) + 1)
    return f"at line {line} column {column}"


def _end(text: str) -> str:
    """serde's position for an error found once the whole value was read: its last char."""
    stripped = text.rstrip()
    return _position(stripped, len(stripped))


def _unexpected(value: Any) -> str:
    """serde's words for a JSON value of the wrong type."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean `{str(value).lower()}`"
    if isinstance(value, int):
        return f"integer `{value}`"
    if isinstance(value, float):
        return f"floating point `{value}`"
    if isinstance(value, str):
        return f'string "{value}"'
    return "sequence" if isinstance(value, list) else "map"


def _data_error(detail: str, text: str) -> BadRequest:
    return BadRequest(
        "BadJsonBody",
        f"Failed to deserialize the JSON body into the target type: {detail} {_end(text)}",
    )


def read_json_body(content_type: str | None, raw: bytes) -> tuple[Any, str]:
    """The parsed JSON body and its text, or the `BadJsonBody` refusal."""
    if not _is_json(content_type):
        raise BadRequest("BadJsonBody", "Expected request with `Content-Type: application/json`")
    text = raw.decode("utf-8", "replace")
    try:
        return json.loads(text), text
    except json.JSONDecodeError as exc:
        what = "EOF while parsing a value" if not text.strip() else "expected value"
        raise BadRequest(
            "BadJsonBody",
            f"Failed to parse the request body as JSON: {what} {_position(text, exc.pos)}",
        ) from None


def udf_request(body: Any, text: str, *, where: str = "", struct: str = "UdfPostRequest") -> dict[str, Any]:
    """Check a `{path, args, format?}` object the way serde derives it; `where` prefixes paths."""
    prefix = f"{where}: " if where else ""
    if not isinstance(body, dict):
        raise _data_error(f"{prefix}invalid type: {_unexpected(body)}, expected struct {struct}", text)
    for field in ("path", "args"):
        if field not in body:
            raise _data_error(f"{prefix}missing field `{field}`", text)
    dotted = f"{where}." if where else ""
    if not isinstance(body["path"], str):
        raise _data_error(f"{dotted}path: invalid type: {_unexpected(body['path'])}, expected a string", text)
    fmt = body.get("format")
    if fmt is not None and not isinstance(fmt, str):
        raise _data_error(f"{dotted}format: invalid type: {_unexpected(fmt)}, expected a string", text)
    return body


def batch_request(body: Any, text: str) -> list[dict[str, Any]]:
    """Check a `{queries: [{path, args, format?}, ...]}` body."""
    if not isinstance(body, dict):
        raise _data_error(f"invalid type: {_unexpected(body)}, expected struct QueryBatchArgs", text)
    if "queries" not in body:
        raise _data_error("missing field `queries`", text)
    queries = body["queries"]
    if not isinstance(queries, list):
        raise _data_error(f"queries: invalid type: {_unexpected(queries)}, expected a sequence", text)
    return [udf_request(q, text, where=f"queries[{i}]") for i, q in enumerate(queries)]


# -- function paths and formats ---------------------------------------------------------------

_COMPONENT = re.compile(r"[A-Za-z0-9_.]+")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _path_problem(path: str) -> str | None:
    module, _, function = path.rpartition(":") if ":" in path else (path, "", None)
    if function is not None and not _IDENTIFIER.fullmatch(function):
        return (
            f"Function name {function} must start with a letter or underscore and contain "
            "only alphanumeric characters and underscores."
        )
    if not module:
        return "Module paths must be nonempty."
    if module.startswith("/"):
        return f"Module paths must be relative ({module} is absolute)."
    name = module.rsplit("/", 1)[-1]
    if "." in name and not name.endswith(".js"):
        return f"Module path ({module}) has an extension that isn't 'js'."
    for component in module.split("/"):
        if component in ("", ".", ".."):
            return f"Invalid path component in {module}"
        if not _COMPONENT.fullmatch(component):
            return (
                f"Path component {component} can only contain alphanumeric characters, "
                "underscores, or periods."
            )
        if not re.search(r"[A-Za-z0-9]", component):
            return f"Path component {component} must have at least one alphanumeric character."
    return None


def function_path(path: str) -> str:
    """`path` as the registry names functions (`dir/file:fn`, `.js` dropped), or a 400."""
    if (problem := _path_problem(path)) is not None:
        raise BadRequest(
            "BadConvexFunctionIdentifier", f"{path} is not a valid path to a Convex function. {problem}"
        )
    module, _, function = path.rpartition(":") if ":" in path else (path, "", "default")
    return f"{module.removesuffix('.js')}:{function}"


FORMATS = {
    "json": "json",
    "convex_clean_json": "json",
    "convex_encoded_json": "encoded",
    "convex_json": "encoded",
    "export_json": "export",
}


def default_format(header: str | None) -> str:
    """The format of a call without `format`: encoded JSON only for old npm / python clients."""
    parsed = parse_client_version(header) if header else None
    family = _CLIENT_TYPES.get(parsed.client) if parsed else None
    threshold = {"npm": "1.4.1", "python": "0.5.0"}.get(family or "")
    if parsed is None or threshold is None or parsed.version is None:
        return "json"
    limit = parse_semver(threshold)
    assert limit is not None
    return "json" if _key(parsed.version) >= _key(limit) else "encoded"


def value_format(fmt: str | None, default: str = "json") -> str:
    """The export format named by `format` (`default` when absent)."""
    if fmt is None:
        return default
    if fmt not in FORMATS:
        raise BadRequest("BadFormat", f"format param must be one of [`json`]. Got {fmt}")
    return FORMATS[fmt]
