"""Field paths and templates (DESIGN §3, §8 "Matching" and "Templates")."""

from __future__ import annotations

from typing import Any

import pytest

from warden.paths import (
    MISSING,
    TemplateSyntaxError,
    get,
    join_path,
    parse_template,
    render,
    render_text,
    resolve,
    resolve_paths,
    split_path,
)

DOC: dict[str, Any] = {
    "tool_input": {"command": "ls -la", "timeout": 30},
    "metadata": {"labels": {"app.kubernetes.io/name": "web", "tier": "front"}},
    "items": [{"name": "a", "n": 1}, {"name": "b", "n": 2}],
    "empty_list": [],
    "empty_obj": {},
    "flag": False,
    "nothing": None,
}


# ------------------------------------------------------------------------- split


@pytest.mark.parametrize(("path", "segments"), [
    ("tool_input.command", ["tool_input", "command"]),
    ("a", ["a"]),
    (r"metadata.labels.app\.kubernetes\.io/name", ["metadata", "labels",
                                                    "app.kubernetes.io/name"]),
    ("items.0.name", ["items", "0", "name"]),
    ("items.*.name", ["items", "*", "name"]),
    (r"a\b.c", [r"a\b", "c"]),  # a backslash not before a dot stays
])
def test_split_path(path: str, segments: list[str]) -> None:
    assert split_path(path) == segments


@pytest.mark.parametrize("bad", ["", "a..b", ".a", "a."])
def test_split_path_rejects_empty_segments(bad: str) -> None:
    with pytest.raises(TemplateSyntaxError):
        split_path(bad)


def test_join_path_round_trips_escaped_dots() -> None:
    segs = ["metadata", "labels", "app.kubernetes.io/name"]
    assert split_path(join_path(segs)) == segs


# ------------------------------------------------------------------------ lookup


def test_get_walks_objects_and_list_indexes() -> None:
    assert get(DOC, ["tool_input", "command"]) == "ls -la"
    assert get(DOC, split_path(r"metadata.labels.app\.kubernetes\.io/name")) == "web"
    assert get(DOC, ["items", "1", "name"]) == "b"
    assert get(DOC, ["items", "2", "name"]) is MISSING
    assert get(DOC, ["items", "name"]) is MISSING  # no index into a list by name
    assert get(DOC, ["tool_input", "command", "x"]) is MISSING  # into a string
    assert get(DOC, ["flag"]) is False
    assert get(DOC, ["nothing"]) is None  # null is present, not missing
    assert get({"0": "key"}, ["0"]) == "key"  # numeric segment on an object is a key


def test_negative_index_is_not_python_indexing() -> None:
    assert get(DOC, ["items", "-1", "name"]) is MISSING


def test_star_fans_out_over_lists_and_objects() -> None:
    assert list(resolve(DOC, ["items", "*", "name"])) == ["a", "b"]
    assert sorted(resolve(DOC, ["metadata", "labels", "*"])) == ["front", "web"]
    assert list(resolve(DOC, ["empty_list", "*"])) == []
    assert list(resolve(DOC, ["empty_obj", "*"])) == []
    assert list(resolve(DOC, ["absent", "*"])) == []
    assert list(resolve(DOC, ["tool_input", "command", "*"])) == []  # a string is no collection
    nested = {"a": [{"b": [1, 2]}, {"b": [3]}, {"c": 4}]}
    assert list(resolve(nested, ["a", "*", "b", "*"])) == [1, 2, 3]


def test_resolve_paths_reports_concrete_paths() -> None:
    assert list(resolve_paths(DOC, ["items", "*", "n"])) == [
        (("items", 0, "n"), 1), (("items", 1, "n"), 2)]


# --------------------------------------------------------------------- templates


def test_parse_template() -> None:
    assert parse_template("rm {tool_input.command}!") == ["rm ", ["tool_input", "command"], "!"]
    assert parse_template("plain") == ["plain"]
    assert parse_template("{ a.b }") == [["a", "b"]]


def test_double_braces_are_literal() -> None:
    assert parse_template("{{x}}") == ["{x}"]
    assert render_text(parse_template("{{ {tool_input.command} }}"), DOC) == "{ ls -la }"
    assert render_text(parse_template("a}}b{{c"), DOC) == "a}b{c"


@pytest.mark.parametrize("bad", ["{unclosed", "stray } brace", "{}", "{ }", "{a..b}", "{{a}"])
def test_template_syntax_errors(bad: str) -> None:
    with pytest.raises(TemplateSyntaxError):
        parse_template(bad)


def test_single_placeholder_keeps_its_type() -> None:
    for path, want in [("tool_input.timeout", 30), ("flag", False), ("items.0", DOC["items"][0]),
                       ("nothing", None)]:
        got = render(parse_template("{" + path + "}"), DOC, "condition")
        assert got == want and type(got) is type(want)


def test_non_strings_render_as_compact_json() -> None:
    assert render_text(parse_template("t={tool_input.timeout}"), DOC) == "t=30"
    assert render_text(parse_template("f={flag}"), DOC) == "f=false"
    assert render_text(parse_template("n={nothing}"), DOC) == "n=null"
    assert render_text(parse_template("i={items.0}"), DOC) == 'i={"name":"a","n":1}'
    assert render_text(parse_template("l={empty_list}"), DOC) == "l=[]"
    assert render_text(parse_template("u={x}"), {"x": "é"}) == "u=é"
    assert render_text(parse_template("{items.0}"), DOC) == '{"name":"a","n":1}'


def test_missing_field_renders_empty_in_messages() -> None:
    assert render_text(parse_template("blocked: {tool_input.nope}!"), DOC) == "blocked: !"
    assert render(parse_template("{nope}"), DOC, "message") == ""


def test_missing_field_in_condition_mode_is_missing() -> None:
    assert render(parse_template("{nope}"), DOC, "condition") is MISSING
    assert render(parse_template("x-{nope}"), DOC, "condition") is MISSING
    # present but empty is fine in a condition
    assert render(parse_template("x-{e}"), {"e": ""}, "condition") == "x-"


def test_strict_mode_rejects_missing_and_empty() -> None:
    tpl = parse_template("/{params.dir}")
    assert render(tpl, {"params": {"dir": "tmp"}}, "strict") == "/tmp"
    assert render(tpl, {"params": {}}, "strict") is MISSING
    assert render(tpl, {"params": {"dir": ""}}, "strict") is MISSING
    assert render(tpl, {"params": {"dir": None}}, "strict") is MISSING
    assert render(parse_template("{params.dir}"), {"params": {"dir": ""}}, "strict") is MISSING
    # zero and false are values, not emptiness
    assert render(parse_template("n={v}"), {"v": 0}, "strict") == "n=0"
    assert render(parse_template("{v}"), {"v": False}, "strict") is False
