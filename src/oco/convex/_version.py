"""The `Convex-Client` header: `trio-oco-<semver>`, whatever PEP 440 version we were built as.

Convex answers HTTP 400 `InvalidClientVersion` to every call whose header is not
`<name>-<semver>`: it splits the header on `-` and takes the longest suffix that parses as
strict SemVer 2.0 (Rust `semver::Version::parse`; get-convex/convex-backend
`crates/common/src/version.rs`). Python package versions follow PEP 440 instead
(`0.2.0.dev1`, `1.0rc1`, `1.0.post2`, `2!1.0+local`), most of which are not SemVer, so a dev
build would break every call. `semver_of` maps any PEP 440 version onto a valid SemVer:
pre and dev releases become the SemVer pre-release, what SemVer has no place for (epoch,
post release, a fourth release number, the local label) goes into the build metadata.
Pure, standard library only.
"""

from __future__ import annotations

import re

CLIENT_NAME = "trio-oco"

# PEP 440, Appendix B ("Parsing version strings with regular expressions").
_PEP440 = re.compile(
    r"""
    v?
    (?:(?P<epoch>[0-9]+)!)?
    (?P<release>[0-9]+(?:\.[0-9]+)*)
    (?P<pre>[-_.]?(?P<pre_l>alpha|a|beta|b|preview|pre|c|rc)[-_.]?(?P<pre_n>[0-9]+)?)?
    (?P<post>(?:-(?P<post_n1>[0-9]+))|(?:[-_.]?(?P<post_l>post|rev|r)[-_.]?(?P<post_n2>[0-9]+)?))?
    (?P<dev>[-_.]?(?P<dev_l>dev)[-_.]?(?P<dev_n>[0-9]+)?)?
    (?:\+(?P<local>[a-z0-9]+(?:[-_.][a-z0-9]+)*))?
    """,
    re.VERBOSE | re.IGNORECASE,
)
_PRE_NAMES = {"a": "alpha", "alpha": "alpha", "b": "beta", "beta": "beta"}  # the rest: rc
_U64_MAX = 2**64 - 1  # the Rust semver crate's limit for major, minor and patch
FALLBACK = "0.0.0"


def semver_of(version: str) -> str:
    """A strict SemVer 2.0 string for the PEP 440 `version` (`FALLBACK` if it is not one)."""
    match = _PEP440.fullmatch(version.strip())
    if match is None:
        return FALLBACK
    release = [int(part) for part in match["release"].split(".")]
    core = [*release, 0, 0, 0][:3]
    pre: list[str] = []
    build: list[str] = []
    if match["epoch"] is not None and int(match["epoch"]):
        build += ["epoch", str(int(match["epoch"]))]
    if any(n > _U64_MAX for n in core):
        build += ["release", *(str(n) for n in release)]
        core = [min(n, _U64_MAX) for n in core]
    elif len(release) > 3:
        build += ["release", *(str(n) for n in release[3:])]
    if match["pre"]:
        pre += [_PRE_NAMES.get(match["pre_l"].lower(), "rc"), str(int(match["pre_n"] or 0))]
    if match["post"]:
        build += ["post", str(int(match["post_n1"] or match["post_n2"] or 0))]
    if match["dev"]:
        pre += ["dev", str(int(match["dev_n"] or 0))]
    if match["local"]:
        build += ["local", *(_identifier(part) for part in re.split(r"[-_.]", match["local"]))]
    text = ".".join(str(n) for n in core)
    if pre:
        text += "-" + ".".join(pre)
    if build:
        text += "+" + ".".join(build)
    return text


def _identifier(part: str) -> str:
    """A local-label part as a SemVer identifier: lower case, no leading zeros in a number."""
    return str(int(part)) if part.isdigit() else part.lower()


def client_header(version: str, name: str = CLIENT_NAME) -> str:
    """The `Convex-Client` header value for package `version`: `<name>-<semver>`."""
    return f"{name}-{semver_of(version)}"


__all__ = ["CLIENT_NAME", "FALLBACK", "client_header", "semver_of"]
