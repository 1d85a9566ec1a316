"""warden._json (the hot path's JSON, straight from CPython's ``_json``) gives exactly what
the ``json`` module gives: same values, same text, same errors."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from warden import _json

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
)
documents = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None)
@given(documents)
def test_dumps_matches_json(doc: Any) -> None:
    for ensure_ascii in (True, False):
        assert _json.dumps(doc, ensure_ascii=ensure_ascii) == json.dumps(
            doc, ensure_ascii=ensure_ascii)
        assert _json.dumps(doc, ensure_ascii=ensure_ascii, separators=(",", ":")) == json.dumps(
            doc, ensure_ascii=ensure_ascii, separators=(",", ":"))
        assert _json.dumps(doc, ensure_ascii=ensure_ascii, indent=2) == json.dumps(
            doc, ensure_ascii=ensure_ascii, indent=2)


@settings(max_examples=300, deadline=None)
@given(documents, st.sampled_from(["", " ", "\n\t ", "\r\n"]))
def test_loads_matches_json(doc: Any, ws: str) -> None:
    text = ws + json.dumps(doc) + ws
    assert _json.loads(text) == json.loads(text)
    assert _json.loads(text.encode()) == json.loads(text.encode())


@pytest.mark.parametrize("text", ["", "   ", "{", '{"a": 1} x', "[1,]", "nul", '"\\x"',
                                  '{"a" 1}', "[1] [2]", "\ufeff{}"])
def test_bad_json_raises_what_json_raises(text: str) -> None:
    with pytest.raises(ValueError) as ours:
        _json.loads(text)
    with pytest.raises(ValueError) as theirs:
        json.loads(text)
    assert str(ours.value) == str(theirs.value)


def test_nan_and_infinity_are_written_like_json() -> None:
    doc = {"a": [float("nan"), float("inf"), -float("inf"), 1e300, -0.0, 1, True, None]}
    for indent in (None, 2):
        assert _json.dumps(doc, indent=indent) == json.dumps(doc, indent=indent)


def test_constants_follow_parse_constant() -> None:
    assert math.isinf(_json.loads("[Infinity]")[0])

    def refuse(name: str) -> Any:
        raise ValueError(f"{name} is not valid JSON")

    with pytest.raises(ValueError, match="NaN is not valid JSON"):
        _json.loads('{"a": NaN}', parse_constant=refuse)
    assert _json.loads('{"a": 1}', parse_constant=refuse) == {"a": 1}


def test_deep_nesting_raises_recursion_error_like_json() -> None:
    text = "[" * 100_000 + "]" * 100_000
    with pytest.raises(RecursionError):
        _json.loads(text)


def test_objects_json_cannot_encode_fail_the_same_way_and_do_not_poison_later_calls() -> None:
    bad = {"a": [1, {"b": object()}]}
    with pytest.raises(TypeError, match="not JSON serializable"):
        _json.dumps(bad)
    with pytest.raises(TypeError, match="not JSON serializable"):
        _json.dumps(bad, indent=2)
    # the same containers again, now encodable: no stale circular-reference marker
    bad["a"][1]["b"] = 2  # type: ignore[index]
    assert _json.dumps(bad) == json.dumps(bad)
    cyclic: list[Any] = []
    cyclic.append(cyclic)
    with pytest.raises(ValueError, match="Circular reference"):
        _json.dumps(cyclic)
    with pytest.raises(ValueError, match="Circular reference"):
        _json.dumps(cyclic, indent=2)
    assert _json.dumps([1, [2]]) == "[1, [2]]"


def test_non_string_keys_and_tuples_as_json_writes_them() -> None:
    doc = {2: (1, 2), None: 1.5, True: [], 2.5: "x"}
    assert _json.dumps(doc) == json.dumps(doc)
    assert _json.dumps(doc, indent=2) == json.dumps(doc, indent=2)


@pytest.mark.parametrize("text", ["{", "[1,]", '{"a": 1} x', "nul"])
def test_errors_without_json_imported(text: str) -> None:
    """In a hook process ``json`` is not imported: the C scanner cannot raise its own
    error there; the message must still be json's."""
    import subprocess
    import sys

    code = ("import sys\nfrom warden import _json\nassert 'json.decoder' not in sys.modules\n"
            "try:\n    _json.loads(sys.argv[1])\nexcept ValueError as e:\n    print(e)\n")
    proc = subprocess.run([sys.executable, "-c", code, text], capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    with pytest.raises(ValueError) as theirs:
        json.loads(text)
    assert proc.stdout.strip() == str(theirs.value)
