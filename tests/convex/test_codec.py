"""The convex_encoded_json codec: documented examples and round-trip properties."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from oco.convex import CodecError, Int64, decode, encode

keys = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1).filter(
    lambda k: not k.startswith("$")
)
leaves = (
    st.none()
    | st.booleans()
    | st.text()
    | st.floats(allow_nan=False)
    | st.integers(-(2**63), 2**63 - 1).map(Int64)
    | st.binary()
)
values = st.recursive(
    leaves,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=20,
)


def plain(value: object) -> object:
    """What decoding gives back for an encoded value (Int64 comes back as int)."""
    if isinstance(value, Int64):
        return value.value
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


@given(values)
def test_decode_inverts_encode(value: object) -> None:
    assert decode(encode(value)) == plain(value)


@given(st.floats(allow_nan=False))
def test_floats_keep_their_sign_and_value(x: float) -> None:
    back = decode(encode(x))
    assert back == x and math.copysign(1, back) == math.copysign(1, x)


def test_nan_round_trips_as_special_float() -> None:
    encoded = encode(float("nan"))
    assert set(encoded) == {"$float"}
    assert math.isnan(decode(encoded))


def test_int64_matches_the_documented_example() -> None:
    assert encode(Int64(5151996)) == {"$integer": "/JxOAAAAAAA="}
    assert decode({"$integer": "/JxOAAAAAAA="}) == 5151996


def test_python_int_goes_out_as_float64() -> None:
    assert encode({"sequence": 3}) == {"sequence": 3.0}
    assert isinstance(encode(3), float)
    assert decode(7) == 7.0 and isinstance(decode(7), float)


def test_bytes_and_negative_zero() -> None:
    assert encode(b"\x00\xff") == {"$bytes": "AP8="}
    assert encode(-0.0) == {"$float": "AAAAAAAAAIA="}


@pytest.mark.parametrize(
    "bad",
    [{"$x": 1}, {"": 1}, {1: 2}, object(), 10**400],
)
def test_unencodable_values_are_refused(bad: object) -> None:
    with pytest.raises(CodecError):
        encode(bad)


@pytest.mark.parametrize(
    "bad",
    [{"$integer": "AAA="}, {"$integer": 5}, {"$unknown": "x"}, {"$bytes": "not base64!"}],
)
def test_malformed_special_values_are_refused(bad: object) -> None:
    with pytest.raises(CodecError):
        decode(bad)


def test_int64_out_of_range_is_refused() -> None:
    with pytest.raises(CodecError):
        Int64(2**63)
