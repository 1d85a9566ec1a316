"""Stage 1: reading YAML/JSON/TOML with positions, and finding policy files (DESIGN §2)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from warden.errors import PolicyError
from warden.load import discover, find_project_root, load_data_file, load_document, parse_yaml
from wardentest import Env, Project, write


def data(text: str, **kw: object) -> object:
    docs = parse_yaml(text, "f.yaml", **kw)  # type: ignore[arg-type]
    assert len(docs) == 1
    return docs[0].data


def error(text: str | bytes, **kw: object) -> PolicyError:
    with pytest.raises(PolicyError) as info:
        parse_yaml(text, "f.yaml", **kw)  # type: ignore[arg-type]
    return info.value


# ------------------------------------------------------------------ YAML 1.2 scalars


@pytest.mark.parametrize("word", ["on", "off", "yes", "no", "y", "n", "On", "YES", "Off"])
def test_yaml_11_booleans_stay_strings(word: str) -> None:
    assert data(f"v: {word}\n") == {"v": word}


def test_github_workflow_on_key_stays_the_string_on() -> None:
    doc = data("on:\n  push:\n    branches: [main]\n", string_keys=False)
    assert doc == {"on": {"push": {"branches": ["main"]}}}


@pytest.mark.parametrize(("text", "value"), [
    ("true", True), ("false", False), ("True", True), ("FALSE", False),
    ("0o17", 15), ("0x1F", 31), ("42", 42), ("-7", -7), ("+12", 12), ("017", 17),
    ("1.5", 1.5), ("1e3", 1000.0), ("null", None), ("~", None), ("", None),
])
def test_yaml_12_core_scalars(text: str, value: object) -> None:
    got = data(f"v: {text}\n")
    assert got == {"v": value}
    assert type(got["v"]) is type(value)  # type: ignore[index]


@pytest.mark.parametrize("text", ["1_000", "2024-01-01", "2001-12-14t21:59:43.10-05:00",
                                  "0b101", "1:30", "0o19", "~foo", ".5.5"])
def test_yaml_11_only_forms_stay_strings(text: str) -> None:
    assert data(f"v: {text}\n") == {"v": text}


def test_quoted_and_explicitly_tagged_scalars_are_strings() -> None:
    assert data("a: 'true'\nb: \"5\"\nc: !!str 5\nd: !!str true\n") == {
        "a": "true", "b": "5", "c": "5", "d": "true"}


def test_special_floats() -> None:
    doc = data("a: .inf\nb: -.inf\nc: .nan\n")
    assert doc["a"] == float("inf") and doc["b"] == float("-inf")  # type: ignore[index]
    assert doc["c"] != doc["c"]  # type: ignore[index]


# ------------------------------------------------------------------------- errors


def test_duplicate_key_is_an_error_with_position() -> None:
    err = error("version: 1\npolicies: []\nversion: 2\n")
    assert err.file == "f.yaml" and (err.line, err.column) == (3, 1)
    assert "duplicate key 'version'" in str(err)
    assert str(err).startswith("f.yaml:3:1:")
    assert "line 1" in str(err)  # where the first one is


def test_nested_duplicate_key_position() -> None:
    err = error("a:\n  b: 1\n  c: 2\n  b: 3\n")
    assert (err.line, err.column) == (4, 3)


def test_tab_indentation_is_an_error_with_position() -> None:
    err = error("policies:\n\t- name: x\n")
    assert (err.line, err.column) == (2, 1)
    assert "tab" in str(err).lower()


def test_non_string_keys_are_refused_in_policy_files() -> None:
    err = error("version: 1\n1: x\n")
    assert (err.line, err.column) == (2, 1)
    assert "must be a string" in str(err)
    assert "'true' must be a string" in str(error("true: x\n"))
    assert "plain strings" in str(error("? [a, b]\n: 1\n"))


def test_non_string_keys_are_kept_as_text_in_data_files() -> None:
    assert data("1: a\ntrue: b\nnull: c\non: d\n", string_keys=False) == {
        "1": "a", "true": "b", "null": "c", "on": "d"}


def test_billion_laughs_is_refused_quickly() -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 10):
        prev, cur = chr(96 + i), chr(97 + i)
        lines.append(f"{cur}: &{cur} [" + ", ".join([f"*{prev}"] * 10) + "]")
    start = time.perf_counter()
    err = error("\n".join(lines) + "\n")
    assert time.perf_counter() - start < 2.0
    assert "alias" in str(err) and err.line is not None


def test_modest_alias_reuse_is_fine() -> None:
    doc = data("base: &b {x: 1}\none: *b\ntwo: [*b, *b]\n")
    assert doc == {"base": {"x": 1}, "one": {"x": 1}, "two": [{"x": 1}, {"x": 1}]}


def test_recursive_alias_is_refused() -> None:
    err = error("a: &a [1, *a]\n")
    assert "recursive" in str(err) and err.line == 1


@pytest.mark.parametrize("text", [
    "[" * 10_000 + "]" * 10_000,
    "a: " + "{b: " * 10_000 + "1" + "}" * 10_000,
    "".join(" " * i + "- \n" for i in range(10_000)),
])
def test_very_deep_nesting_is_a_clean_error(text: str) -> None:
    start = time.perf_counter()
    err = error(text)
    assert err.file == "f.yaml" and err.line is not None
    assert "nesting" in str(err)
    assert time.perf_counter() - start < 5.0


def test_nesting_beyond_the_limit_but_within_libyaml_is_refused() -> None:
    err = error("[" * 300 + "]" * 300)
    assert "deeper than 256" in str(err)


def test_multi_document_policy_file_is_refused(tmp_path: Path) -> None:
    f = write(tmp_path / "warden.yaml", "version: 1\n---\nversion: 1\n")
    with pytest.raises(PolicyError) as info:
        load_document(f, "warden.yaml")
    assert "one YAML document" in str(info.value)
    assert (info.value.line, info.value.column) == (3, 1)


def test_policy_file_must_be_a_mapping(tmp_path: Path) -> None:
    f = write(tmp_path / "warden.yaml", "- version: 1\n")
    with pytest.raises(PolicyError, match="expected a mapping"):
        load_document(f)
    empty = write(tmp_path / "empty.yaml", "# nothing\n")
    with pytest.raises(PolicyError, match="empty file"):
        load_document(empty)


def test_syntax_error_reports_file_line_col(tmp_path: Path) -> None:
    f = write(tmp_path / "warden.yaml", "version: 1\npolicies:\n  - name: [unclosed\n")
    with pytest.raises(PolicyError) as info:
        load_document(f, "warden.yaml")
    assert str(info.value).startswith("warden.yaml:")
    assert info.value.line is not None and info.value.line >= 3


def test_invalid_utf8_and_nul_bytes() -> None:
    assert "UTF-8" in str(error(b"a: \xff\xfe\n"))
    assert "NUL" in str(error("a: b\x00\n"))


# ---------------------------------------------------------------------- positions


def test_positions_of_keys_and_values() -> None:
    doc = parse_yaml("version: 1\npolicies:\n  - name: x\n    effect: deny\n", "f.yaml")[0]
    assert doc.positions[("version",)] == (1, 10)
    assert doc.key_positions[("version",)] == (1, 1)
    assert doc.positions[("policies", 0)] == (3, 5)
    assert doc.key_positions[("policies", 0, "effect")] == (4, 5)
    assert doc.positions[("policies", 0, "effect")] == (4, 13)
    assert doc.where(("policies", 0, "name")) == "f.yaml:3:11"
    # a path that does not exist falls back to its nearest ancestor
    assert doc.where(("policies", 0, "when", "field")) == "f.yaml:3:5"


# --------------------------------------------------------------------- data files


def test_json_data_file_with_positions(tmp_path: Path) -> None:
    f = write(tmp_path / "d.json", '{"a": {"b": [1, {"c": "x"}]},\n "on": true}\n')
    [doc] = load_data_file(str(f), "json", "d.json")
    assert doc.data == {"a": {"b": [1, {"c": "x"}]}, "on": True}
    assert doc.positions[("a", "b", 1, "c")] == (1, 23)
    assert doc.positions[("on",)] == (2, 8)


@pytest.mark.parametrize(("text", "where"), [
    ('{"a": 1,}', (1, 9)),           # trailing comma is YAML, not JSON
    ('{"a": 1}\n{"b": 2}', (2, 1)),  # two documents
    ("{'a': 1}", (1, 2)),
])
def test_invalid_json_data_file(tmp_path: Path, text: str, where: tuple[int, int]) -> None:
    f = write(tmp_path / "d.json", text)
    with pytest.raises(PolicyError) as info:
        load_data_file(str(f), "json", "d.json")
    assert "invalid JSON" in str(info.value)
    assert (info.value.line, info.value.column) == where


def test_json_duplicate_keys_are_refused(tmp_path: Path) -> None:
    f = write(tmp_path / "d.json", '{"a": 1,\n "a": 2}')
    with pytest.raises(PolicyError, match="duplicate key") as info:
        load_data_file(str(f), "json", "d.json")
    assert info.value.line == 2


def test_json_nan_is_not_json(tmp_path: Path) -> None:
    f = write(tmp_path / "d.json", '{"a": NaN}')
    with pytest.raises(PolicyError, match="invalid JSON"):
        load_data_file(str(f), "json")


def test_json_with_very_long_key_still_loads(tmp_path: Path) -> None:
    key = "k" * 5000
    f = write(tmp_path / "d.json", '{"' + key + '": 1}')
    [doc] = load_data_file(str(f), "json")
    assert doc.data == {key: 1}


def test_toml_data_file(tmp_path: Path) -> None:
    f = write(tmp_path / "pyproject.toml", """\
        [project]
        name = "demo"
        released = 1979-05-27
        [tool.ruff]
        line-length = 100
        """)
    [doc] = load_data_file(str(f), "toml", "pyproject.toml")
    assert doc.data == {"project": {"name": "demo", "released": "1979-05-27"},
                        "tool": {"ruff": {"line-length": 100}}}
    assert doc.positions[("tool", "ruff", "line-length")][0] == 5
    assert doc.positions[("project", "name")][0] == 2


def test_invalid_toml_has_position(tmp_path: Path) -> None:
    f = write(tmp_path / "x.toml", "a = 1\nb = \n")
    with pytest.raises(PolicyError) as info:
        load_data_file(str(f), "toml", "x.toml")
    assert "invalid TOML" in str(info.value) and info.value.line == 2


def test_yaml_data_file_may_hold_several_documents(tmp_path: Path) -> None:
    f = write(tmp_path / "m.yaml", "kind: A\n---\nkind: B\non: yes\n")
    docs = load_data_file(str(f), "yaml")
    assert [d.data for d in docs] == [{"kind": "A"}, {"kind": "B", "on": "yes"}]
    assert docs[1].positions[("on",)] == (4, 5)


# ---------------------------------------------------------------------- discovery


def names(sources: list) -> list[tuple[str, str]]:  # type: ignore[type-arg]
    return [(Path(s.path).name, s.scope) for s in sources]


def test_discovery_order_project_then_dot_warden_lexical_then_user(
        project: Project, xdg: Env) -> None:
    project.write(".warden/b.yaml", "version: 1\n")
    project.write(".warden/a.yml", "version: 1\n")
    project.write(".warden/10-z.yaml", "version: 1\n")
    project.write(".warden/a.warden-test.yaml", "version: 1\ntests: []\n")
    project.write(".warden/notes.txt", "not a policy")
    write(xdg.user_dir / "zz.yaml", "version: 1\n")
    write(xdg.user_dir / "aa.yaml", "version: 1\n")
    sources, root = discover(cwd=str(project.root))
    assert root == project.root.resolve()
    assert names(sources) == [
        ("warden.yaml", "project"), ("10-z.yaml", "project"), ("a.yml", "project"),
        ("b.yaml", "project"), ("aa.yaml", "user"), ("zz.yaml", "user")]
    assert sources[0].display == "warden.yaml"
    assert sources[2].display == str(Path(".warden") / "a.yml")


def test_user_files_can_be_left_out(project: Project, xdg: Env) -> None:
    write(xdg.user_dir / "mine.yaml", "version: 1\n")
    sources, _ = discover(cwd=str(project.root), user=False)
    assert names(sources) == [("warden.yaml", "project")]


def test_nearest_ancestor_is_the_project_root(project: Project) -> None:
    inner = project.root / "sub" / "inner"
    write(inner / ".warden" / "p.yaml", "version: 1\n")
    deep = inner / "src" / "pkg"
    deep.mkdir(parents=True)
    sources, root = discover(cwd=str(deep), user=False)
    assert root == inner.resolve()
    assert names(sources) == [("p.yaml", "project")]
    # a directory without policy files is skipped on the way up
    other = project.root / "sub" / "plain"
    other.mkdir()
    assert find_project_root(other) == project.root.resolve()


def test_dot_warden_with_only_test_files_is_not_a_project(project: Project) -> None:
    inner = project.root / "x"
    write(inner / ".warden" / "t.warden-test.yaml", "version: 1\ntests: []\n")
    assert find_project_root(inner) == project.root.resolve()


def test_policy_option_replaces_the_project(project: Project, tmp_path: Path, xdg: Env) -> None:
    extra = write(tmp_path / "elsewhere" / "strict.yaml", "version: 1\n")
    write(xdg.user_dir / "u.yaml", "version: 1\n")
    sources, _ = discover([str(extra)], cwd=str(project.root))
    assert names(sources) == [("strict.yaml", "project"), ("u.yaml", "user")]
    # a directory: its project files
    sources, _ = discover([str(project.root)], cwd=str(tmp_path), user=False)
    assert names(sources) == [("warden.yaml", "project")]


def test_policy_option_missing_path_is_a_usage_error(project: Project) -> None:
    from warden.errors import UsageError

    with pytest.raises(UsageError):
        discover(["/does/not/exist.yaml"], cwd=str(project.root))


def test_same_file_twice_is_loaded_once(project: Project) -> None:
    p = str(project.root / "warden.yaml")
    sources, _ = discover([p, p, str(project.root)], cwd=str(project.root), user=False)
    assert len(sources) == 1


def test_start_directory_overrides_cwd(project: Project, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    sources, root = discover(cwd=str(elsewhere), start=str(project.root), user=False)
    assert root == project.root.resolve()
    assert names(sources) == [("warden.yaml", "project")]
