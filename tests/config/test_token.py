"""Worker tokens: format, trimming, and a secret that never shows."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from oco.config import EXAMPLE_TOKEN, Token, TokenError, parse_token

PART = st.text(alphabet="abcXYZ019_-", min_size=1, max_size=30)


def test_parses_the_three_parts() -> None:
    token = parse_token("machine_m-1:worker_w_1:secret_abc-DEF_09")
    assert (token.machine_id, token.worker_id, token.secret) == ("m-1", "w_1", "abc-DEF_09")


def test_surrounding_whitespace_is_trimmed() -> None:
    assert parse_token(" \tmachine_m:worker_w:secret_s\n").secret == "s"


def test_str_and_repr_hide_the_secret() -> None:
    token = parse_token("machine_m1:worker_w1:secret_topsecret")
    assert str(token) == "machine_m1:worker_w1:secret_***"
    assert "topsecret" not in repr(token)
    assert "topsecret" not in repr([token])
    assert token.reveal() == "machine_m1:worker_w1:secret_topsecret"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("machine_m1:worker_w1", "3 ':'-separated parts"),
        ("machine_m1:worker_w1:secret_ab:cd", "(got 4)"),
        ("m1:worker_w1:secret_abcd", "machine part must start with 'machine_'"),
        ("machine_m1:wrk_w1:secret_abcd", "worker part must start with 'worker_'"),
        ("machine_m1:worker_w1:abcdsecret", "secret part must start with 'secret_'"),
        ("machine_:worker_w1:secret_abcd", "machine id must be 1 or more"),
        ("machine_m1:worker_w1:secret_", "secret must be 1 or more"),
        ("machine_m1:worker_wé:secret_abcd", "worker id must be 1 or more"),
        ("machine_m1:worker_w1:secret_ünïcode", "secret must be 1 or more"),
        ("machine_m1:worker_w 1:secret_abcd", "worker id must be 1 or more"),
        ("machine_m1:worker_w1:secret_ab cd", "secret must be 1 or more"),
        ("machine_m1:worker_w1:secret_abcd\nx", "secret must be 1 or more"),
    ],
)
def test_malformed_tokens_say_what_is_wrong(text: str, fragment: str) -> None:
    with pytest.raises(TokenError) as info:
        parse_token(text)
    assert fragment in str(info.value)


def test_a_secret_containing_a_colon_is_rejected_without_being_echoed() -> None:
    with pytest.raises(TokenError) as info:
        parse_token("machine_m1:worker_w1:secret_half:otherhalf")
    assert "half" not in str(info.value) and "otherhalf" not in str(info.value)


def test_the_template_example_token_is_rejected() -> None:
    with pytest.raises(TokenError, match="replace the example token"):
        parse_token(EXAMPLE_TOKEN)


def test_non_string_is_a_token_error() -> None:
    with pytest.raises(TokenError, match="must be a string"):
        parse_token(12345)  # type: ignore[arg-type]


@given(machine=PART, worker=PART, secret=PART)
def test_reveal_round_trips_and_errors_never_echo(machine: str, worker: str, secret: str) -> None:
    token = Token(machine, worker, secret)
    if token.reveal() != EXAMPLE_TOKEN:
        assert parse_token(token.reveal()) == token
    bad = f"machine_{machine}:worker_{worker}:secret_{secret}:{secret}"
    with pytest.raises(TokenError) as info:
        parse_token(bad)
    assert bad not in str(info.value)
