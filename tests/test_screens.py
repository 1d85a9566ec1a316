"""Plain-text screens: a group's first use tests them with string methods instead of an RE2
set (a one-shot hook process never compiles those patterns); the answer must be RE2's."""

from __future__ import annotations

from typing import Any

import re2
from hypothesis import given, settings
from hypothesis import strategies as st

from warden.runtime import _LIT_TESTS, _leaf_pattern, literal_screen

ALPHABET = "ab/._-* $^\\()[]z|?+{}é\n"
texts = st.text(alphabet=ALPHABET, max_size=8)


def re2_says(pattern: str, text: str) -> bool:
    return re2.search(pattern, text) is not None


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(["contains", "starts_with", "ends_with", "equals"]), texts, texts)
def test_plain_text_screens_answer_like_re2(op: str, value: str, text: str) -> None:
    leaf = {"op": "field", "path": ["a"], "cmp": op, "value": value}
    pattern = _leaf_pattern(leaf)
    assert pattern is not None
    lit = literal_screen(pattern)
    if value.isascii():
        assert lit is not None and lit[1] == value, pattern
    if lit is not None:
        assert _LIT_TESTS[lit[0]](text, lit[1]) == re2_says(pattern, text), (pattern, text)


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=ALPHABET, max_size=8), texts)
def test_any_pattern_read_as_plain_text_means_what_re2_means(pattern: str, text: str) -> None:
    """Whatever literal_screen accepts (regexes written in policies included) is exactly
    RE2's search."""
    lit = literal_screen(pattern)
    if lit is None:
        return
    try:
        expected = re2_says(pattern, text)
    except re2.error:
        raise AssertionError(f"{pattern!r} is not a valid RE2 pattern, yet read as text") from None
    assert _LIT_TESTS[lit[0]](text, lit[1]) == expected, (pattern, text, lit)


def test_regexes_are_not_read_as_text() -> None:
    for p in [r"\brm", "a.b", "(?i)x", "x+", "^a$", "[ab]", "a|b", r"\d", r"\z\z", "é"]:
        assert literal_screen(p) is None, p
    glob: Any = {"op": "field", "path": ["a"], "cmp": "glob", "regex": "[^/]*\\.env"}
    pattern = _leaf_pattern(glob)
    assert pattern is not None and literal_screen(pattern) is None
