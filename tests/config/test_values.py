"""Single-value rules: the Convex URL and the working directory."""

from __future__ import annotations

import getpass
import os
from pathlib import Path

import pytest

from oco.config import is_loopback_host, normalise_convex_url
from oco.config._values import ValueProblem, resolve_working_directory


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("https://happy-otter-123.convex.cloud", "https://happy-otter-123.convex.cloud"),
        ("https://happy-otter-123.convex.cloud/", "https://happy-otter-123.convex.cloud"),
        ("  HTTPS://Happy-Otter.Convex.Cloud/  ", "https://happy-otter.convex.cloud"),
        ("https://example.com:8443", "https://example.com:8443"),
        ("http://127.0.0.1:3210/", "http://127.0.0.1:3210"),
        ("http://127.9.8.7", "http://127.9.8.7"),
        ("http://localhost:3210", "http://localhost:3210"),
        ("http://[::1]:3210", "http://[::1]:3210"),
    ],
)
def test_good_urls_are_normalised(given: str, expected: str) -> None:
    assert normalise_convex_url(given) == expected


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("http://example.com", "must use https (got http://example.com)"),
        ("http://128.0.0.1", "must use https"),
        ("http://localhost.evil.com", "must use https"),
        ("ftp://example.com", "must be an https:// URL"),
        ("example.com", "must be an https:// URL"),
        ("https://", "must be an https:// URL"),
        ("https://example.com/api", "no path, query or fragment"),
        ("https://example.com/?x=1", "no path, query or fragment"),
        ("https://example.com/#f", "no path, query or fragment"),
        ("https://user:pw@example.com", "must not contain a user name or password"),
        ("https://example.com:99999", "not a valid URL"),
        ("", "is empty"),
        ("https://your-deployment.convex.cloud/", "replace the example URL"),
    ],
)
def test_bad_urls_are_refused_with_a_reason(given: str, message: str) -> None:
    with pytest.raises(ValueProblem) as info:
        normalise_convex_url(given)
    assert message in str(info.value)


def test_loopback_hosts() -> None:
    assert all(map(is_loopback_host, ["localhost", "LOCALHOST", "127.0.0.1", "127.255.0.1", "::1"]))
    assert not any(map(is_loopback_host, ["0.0.0.0", "10.0.0.1", "example.com", "::2"]))


def test_relative_directory_resolves_against_the_base_not_the_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "base" / "proj").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert resolve_working_directory("proj", tmp_path / "base") == (tmp_path / "base" / "proj")
    assert resolve_working_directory("./proj/../proj", tmp_path / "base") == tmp_path / "base" / "proj"


def test_tilde_and_tilde_user_expand(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "code").mkdir()
    assert resolve_working_directory("~/code", Path("/")) == tmp_path / "code"
    assert resolve_working_directory("~", Path("/")) == tmp_path.resolve()
    me = getpass.getuser()
    assert resolve_working_directory(f"~{me}", Path("/")) == Path(os.path.expanduser(f"~{me}")).resolve()
    with pytest.raises(ValueProblem, match="cannot expand ~no_such_user_xyz: no such user"):
        resolve_working_directory("~no_such_user_xyz/x", Path("/"))


def test_symlinked_directory_is_accepted_and_resolved(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    assert resolve_working_directory("link", tmp_path) == (tmp_path / "real").resolve()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: None, "does not exist"),
        (lambda p: p.write_text("x"), "is not a directory"),
        (lambda p: p.symlink_to(p.parent / "nowhere"), "does not exist"),
    ],
)
def test_directory_must_exist_and_be_a_directory(tmp_path: Path, make, message: str) -> None:
    make(tmp_path / "target")
    with pytest.raises(ValueProblem, match=message):
        resolve_working_directory("target", tmp_path)


def test_unicode_directory_names_work(tmp_path: Path) -> None:
    (tmp_path / "projét 日本").mkdir()
    assert resolve_working_directory("projét 日本", tmp_path).name == "projét 日本"
