"""State names are printable identifiers, checked when a schema is parsed (docs/machine.md §2.1).

Names become handler method names and reach terminals through logs, recordings and the
debugger, so a schema naming a state with control characters, spaces or punctuation is refused
with a SchemaError whose message shows the name escaped.
"""

from __future__ import annotations

import pytest

import amnode as am

VALID = ["A", "S0", "Err_Net", "_private", "Zustand", "État", "ConnectedMulti2"]
INVALID = ["", "A B", "a-b", "a.b", "0A", "A\x1b[2J", "Title\x1b]0;pwned\x07", "A\n", "A\u200b",
           "A\t"]


@pytest.mark.parametrize("name", VALID)
def test_printable_identifiers_are_state_names(name: str) -> None:
    m = am.Machine({name: {}, "B": am.State(require=[name])})
    assert m.add(["B", name]) == am.Result.EXECUTED
    assert am.is_state_name(name)


@pytest.mark.parametrize("name", INVALID)
def test_other_names_are_refused_at_parse_time(name: str) -> None:
    assert not am.is_state_name(name)
    with pytest.raises(am.SchemaError) as err:
        am.Machine({name: {}})
    message = str(err.value)
    assert "not a state name" in message
    assert not any(ch in message for ch in "\x1b\x07\n\t\u200b"), "the name is escaped"


@pytest.mark.parametrize("rel", ["require", "add", "remove", "after"])
def test_relation_targets_must_be_state_names(rel: str) -> None:
    with pytest.raises(am.SchemaError, match=f"{rel} of A"):
        am.Machine({"A": {rel: ["B\x1b[31m"]}, "B": {}})


def test_non_string_names_are_refused() -> None:
    with pytest.raises(am.SchemaError):
        am.Machine({1: {}})  # type: ignore[dict-item]
    with pytest.raises(am.SchemaError):
        am.Machine({"A": {"add": [None]}})


def test_schema_changes_check_names_before_changing_anything() -> None:
    m = am.Machine({"A": {}})
    m.add("A")
    for change in (m.set_schema, m.replace_schema):
        with pytest.raises(am.SchemaError):
            change({"A": {}, "B\x1b": {}}, ["A", "B\x1b"])
        assert m.state_names == ["A", "Exception"]
        assert m.is_active("A")
