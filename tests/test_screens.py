"""Plain-text screens: a group's first use tests them with string methods instead of an RE2
set (a one-shot hook process never compiles those patterns); the answer must be RE2's."""

from __future__ import annotations

from typing import Any

import re2
from hypothesis import given, settings
from hypothesis import strategies as st

from warden.runtime import _LIT_TESTS, _leaf_pattern, literal_screen, required_text

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


# ------------------------------------------------- required text of a regex (first use)

REGEX_PIECES = ["a", "b", "ab", "-", "/", ".", "\\.", "\\b", "\\s", "\\w", "\\z", "^", "$",
                "*", "+", "?", "{2}", "{1,3}", "(", ")", "(?:", "|", "[ab]", "[^/]", "[]a]",
                "\\-", "é", "*?", "x", "(?i)", "\\d", ":"]
PIECE_TEXTS = ["a", "b", "ab", "-", "/", ".", " ", "x", "é", ":", "aa", "bb", "1"]


@settings(max_examples=3000, deadline=None)
@given(st.lists(st.sampled_from(REGEX_PIECES), min_size=1, max_size=8).map("".join),
       st.lists(st.sampled_from(PIECE_TEXTS), max_size=8).map("".join))
def test_a_text_without_the_required_text_never_matches(pattern: str, text: str) -> None:
    need = required_text(pattern)
    if need is None:
        return
    try:
        matched = re2_says(pattern, text)
    except re2.error:
        return  # RE2 refuses it (validate reports such a policy); nothing to screen
    if matched:
        assert need in text, (pattern, text, need)


def test_required_text_of_typical_policy_regexes() -> None:
    cases = {
        r"\b(curl|wget)\s+\S*tok00001": "tok00001",
        r"\brm\s+-\w*r\w*\s+/(\s|$)": "rm",
        r"^(?:(?:.*/)?secrets/[^/]*\.env)\z": "secrets/",
        r"git\s+push\s+.*--force": "--force",
        r"(?i)drop table": None,  # case-insensitive: no plain text
        "a|b": None,
        r"\Qa.b\E": None,
        "[[:alpha:]]x": None,
    }
    for pattern, want in cases.items():
        assert required_text(pattern) == want, pattern


@settings(max_examples=500, deadline=None)
@given(st.lists(st.text(alphabet="ab-/ _", max_size=3), min_size=2, max_size=4).map("|".join),
       st.text(alphabet="ab-/ _|", max_size=6), st.booleans())
def test_an_alternation_of_words_matches_like_re2(pattern: str, text: str, full: bool) -> None:
    """``tool: {matches: Write|Edit}``: answered by set membership, without RE2."""
    from warden.runtime import regex

    want = (re2.fullmatch(pattern, text) if full else re2.search(pattern, text)) is not None
    assert (regex(pattern, full=full)(text) is not None) == want, (pattern, text, full)
