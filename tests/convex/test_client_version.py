"""The `Convex-Client` header is `<name>-<semver>` for every PEP 440 version we could be built as.

Real Convex answers HTTP 400 `InvalidClientVersion` otherwise (the rule of
get-convex/convex-backend `crates/common/src/version.rs`: the longest suffix after a `-` that
parses as strict SemVer 2.0), so a dev build such as `0.2.0.dev1` would fail every call.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from packaging.version import InvalidVersion, Version

from oco import __version__
from oco.convex._version import client_header, semver_of
from oco.testing import in_process_convex

# semver.org's own regular expression for a strict SemVer 2.0 version.
SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)
U64_MAX = 2**64 - 1


def convex_parse(header: str) -> tuple[str, str] | None:
    """(client, version) as the Convex backend splits a `Convex-Client` header, None if refused."""
    parts = header.split("-")
    for n in range(1, len(parts)):
        candidate = "-".join(parts[n:])
        match = SEMVER.match(candidate)
        if match and all(int(match[i]) <= U64_MAX for i in (1, 2, 3)):
            return "-".join(parts[:n]), candidate
    return None


numbers = st.integers(min_value=0, max_value=10**6) | st.integers(min_value=0, max_value=10**25)
sep = st.sampled_from(["", ".", "-", "_"])


@st.composite
def pep440_versions(draw: Any) -> str:
    """Version strings as PEP 440 allows them to be written (not only the normal form)."""
    text = draw(st.sampled_from(["", "v", "V"]))
    if draw(st.booleans()):
        text += f"{draw(numbers)}!"
    release = draw(st.lists(numbers, min_size=1, max_size=5))
    text += ".".join(str(n).zfill(draw(st.integers(0, 3))) for n in release)
    if draw(st.booleans()):
        label = draw(st.sampled_from(["a", "alpha", "b", "beta", "c", "rc", "pre", "preview", "RC"]))
        number = draw(st.none() | numbers)
        text += draw(sep) + label + ("" if number is None else draw(sep) + str(number))
    if draw(st.booleans()):
        if draw(st.booleans()):
            text += f"-{draw(numbers)}"
        else:
            label = draw(st.sampled_from(["post", "rev", "r", "POST"]))
            number = draw(st.none() | numbers)
            text += draw(sep) + label + ("" if number is None else draw(sep) + str(number))
    if draw(st.booleans()):
        number = draw(st.none() | numbers)
        text += draw(sep) + "dev" + ("" if number is None else draw(sep) + str(number))
    if draw(st.booleans()):
        local = draw(st.lists(st.from_regex(r"[a-zA-Z0-9]{1,6}", fullmatch=True), min_size=1, max_size=4))
        text += "+" + ".".join(local)
    return text


@given(pep440_versions())
@example("0.2.0.dev1")
@example("1.0rc1")
@example("1.0.post2")
@example("1.0")
@example("2!1.0+local")
@example("1.2.3.4.5a1.post0.dev0+ubuntu-1_007")
@example("18446744073709551616")
def test_every_pep440_version_gives_a_header_convex_accepts(version: str) -> None:
    Version(version)  # the strategy only makes real PEP 440 versions
    header = client_header(version)
    assert header.startswith("trio-oco-")
    assert SEMVER.match(header.removeprefix("trio-oco-")), header
    assert convex_parse(header) == ("trio-oco", semver_of(version))


@given(st.text(max_size=40))
def test_any_text_at_all_still_gives_a_valid_header(version: str) -> None:
    try:
        Version(version)
    except InvalidVersion:
        assert semver_of(version) == "0.0.0"
    assert convex_parse(client_header(version)) == ("trio-oco", semver_of(version))


@pytest.mark.parametrize(
    ("version", "semver"),
    [
        ("0.2.0.dev1", "0.2.0-dev.1"),
        ("1.0rc1", "1.0.0-rc.1"),
        ("1.0a2", "1.0.0-alpha.2"),
        ("1.0.post2", "1.0.0+post.2"),
        ("1.0", "1.0.0"),
        ("2!1.0+local", "1.0.0+epoch.2.local.local"),
        ("1.2.3.4", "1.2.3+release.4"),
        ("1.0.0b1.dev3", "1.0.0-beta.1.dev.3"),
        ("0.1.0", "0.1.0"),
    ],
)
def test_known_versions(version: str, semver: str) -> None:
    assert semver_of(version) == semver


async def test_the_client_sends_the_header_of_its_package_version() -> None:
    seen: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(dict(scope["headers"]).get(b"convex-client", b"").decode())
        body = b'{"status":"success","value":null}'
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async with in_process_convex(app, "http://convex.test") as convex:
        await convex.query("a:b")
    assert seen == [client_header(__version__)]
    assert convex_parse(seen[0]) == ("trio-oco", semver_of(__version__))
