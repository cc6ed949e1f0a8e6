"""`insert_worker` edits a workers file's text: the new entry lands at the end of `workers`,
and every character of the file as written (comments, trailing commas, quoting) stays."""

from __future__ import annotations

import json

import json5
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oco.config._jsonc_edit import insert_worker

ENTRY = {"token": "machine_m:worker_new:secret_s", "working_directory": "/p", "name": "new"}

# Text that could fool a scanner: comment markers, brackets and quotes inside strings.
TRICKY = st.sampled_from(["// not a comment", "/* nor this */", "]", "}", "a,b", "it's", 'say "hi"', "ü", ""])
VALUES = st.one_of(TRICKY, st.text(max_size=6), st.integers(-5, 5), st.booleans(), st.none())
COMMENT_TEXT = st.text(alphabet=st.characters(blacklist_characters="\n\r*/", codec="utf-8"), max_size=10)


@st.composite
def comments(draw: st.DrawFn) -> str:
    """Blanks and comments as they may sit between tokens (a // comment ends its line)."""
    parts = draw(
        st.lists(
            st.one_of(
                st.sampled_from([" ", "\n", "  ", "\n    ", "\t"]),
                COMMENT_TEXT.map(lambda t: f"// {t}\n"),
                COMMENT_TEXT.map(lambda t: f"/* {t} */"),
                COMMENT_TEXT.map(lambda t: f"/* {t}\n{t} */"),
            ),
            max_size=3,
        )
    )
    return "".join(parts)


@st.composite
def json5_object(draw: st.DrawFn, values: st.SearchStrategy[object]) -> tuple[str, dict[str, object]]:
    keys = draw(st.lists(st.sampled_from(["token", "name", "a_b", "x1"]), unique=True, max_size=3))
    data = {key: draw(values) for key in keys}
    members = []
    for key, value in data.items():
        shown_key = draw(st.sampled_from([json.dumps(key), key, f"'{key}'"]))
        members.append(
            f"{draw(comments())}{shown_key}:{draw(comments())}{json.dumps(value, ensure_ascii=False)}"
        )
    trailing = "," if members and draw(st.booleans()) else ""
    return "{" + ",".join(members) + trailing + draw(comments()) + "}", data


@st.composite
def workers_files(draw: st.DrawFn) -> tuple[str, dict[str, object]]:
    """A workers file in any JSON5 layout, and what it means."""
    entries = [draw(json5_object(VALUES)) for _ in range(draw(st.integers(0, 3)))]
    members: list[tuple[str, str]] = []
    data: dict[str, object] = {}
    if draw(st.booleans()):
        settings_text, settings_value = draw(json5_object(st.integers(1, 9)))
        members.append(("settings", settings_text))
        data["settings"] = settings_value
    if draw(st.integers(0, 5)):  # mostly with a workers array; sometimes without
        pieces = [draw(comments()) + text + draw(comments()) for text, _ in entries]
        trailing = "," + draw(comments()) if entries and draw(st.booleans()) else ""
        array = "[" + draw(comments()) + ",".join(pieces) + trailing + "]"
        position = draw(st.integers(0, len(members)))
        members.insert(position, (draw(st.sampled_from(['"workers"', "workers", "'workers'"])), array))
        data["workers"] = [value for _, value in entries]
    body = ",".join(f"{draw(comments())}{key}:{draw(comments())}{value}" for key, value in members)
    trailing = "," if members and draw(st.booleans()) else ""
    return draw(comments()) + "{" + body + trailing + draw(comments()) + "}" + draw(comments()), data


def is_subsequence(short: str, long: str) -> bool:
    remaining = iter(long)
    return all(char in remaining for char in short)


@settings(max_examples=400, deadline=None)
@given(workers_files())
def test_the_entry_is_appended_and_everything_written_stays(file: tuple[str, dict[str, object]]) -> None:
    text, meaning = file
    assert json5.loads(text) == meaning  # the generator writes what it means
    edited = insert_worker(text, ENTRY)
    expected = {**meaning, "workers": [*meaning.get("workers", []), ENTRY]}  # type: ignore[misc]
    assert json5.loads(edited) == expected
    assert is_subsequence(text, edited)  # nothing written was removed or reordered


NEW = '{\n    "token": "t"\n  }'  # the entry as written at indent 2
NEW4 = '{\n      "token": "t"\n    }'  # at indent 4


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"workers": []}', '{"workers": [\n  ' + NEW + "\n]}"),
        ('{"workers": [ // none yet\n]}', '{"workers": [ // none yet\n  ' + NEW + "\n]}"),
        ("{}", '{\n  "workers": [\n    ' + NEW4 + "\n  ]\n}"),
        (
            '{\n  "workers": [\n    {"token": "a"}, // first\n  ],\n}',
            '{\n  "workers": [\n    {"token": "a"}, // first\n    ' + NEW4 + ",\n  ],\n}",
        ),
        (
            '{\n  "workers": [\n    {"token": "a"} // first\n  ]\n}',
            '{\n  "workers": [\n    {"token": "a"}, // first\n    ' + NEW4 + "\n  ]\n}",
        ),
    ],
)
def test_layouts(text: str, expected: str) -> None:
    """The comma goes after the element, the entry on a line of its own after its comment."""
    assert insert_worker(text, {"token": "t"}) == expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[]", "top level is not an object"),
        ('{"workers": null}', '"workers" is not an array'),
        ('{"workers": {}}', '"workers" is not an array'),
        ('{"workers": [', "not closed"),
        ('{"workers": []} []', "text follows"),
        ('{"workers": ["x]}', "not closed"),
        ('{"workers": [] /* x', "not closed"),
    ],
)
def test_a_file_without_a_place_for_the_entry_is_a_value_error(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem.replace("[", r"\[")):
        insert_worker(text, ENTRY)
