"""Properties of ${VAR} expansion, and of load_config on arbitrary input."""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from agent.config import ConfigError, load_config
from runtime.config.env import ExpansionError, expand
from tests.agent.config.config_files import BASE, public_pem

names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,12}", fullmatch=True)
no_dollar = st.text().filter(lambda s: "$" not in s)
defaults = st.text().filter(lambda s: "}" not in s)


@given(no_dollar, st.dictionaries(names, st.text()))
def test_text_without_dollar_is_unchanged(text: str, environ: dict[str, str]) -> None:
    assert expand(text, environ) == text


@given(names, defaults, no_dollar, no_dollar)
def test_default_used_when_unset(name: str, default: str, before: str, after: str) -> None:
    assert expand(f"{before}${{{name}:-{default}}}{after}", {}) == before + default + after
    assert expand(f"${{{name}:-{default}}}", {name: ""}) == default


@given(names, defaults, st.text(min_size=1), no_dollar)
def test_value_used_when_set_and_never_expanded_again(
    name: str, default: str, value: str, before: str
) -> None:
    environ = {name: value}
    assert expand(f"{before}${{{name}:-{default}}}", environ) == before + value
    assert expand(f"{before}${{{name}}}", environ) == before + value


@given(st.text())
@example("$${X}")
@example("a$$$$b")
def test_doubled_dollars_read_back_as_written(text: str) -> None:
    assert expand(text.replace("$", "$$"), {}) == text


@given(names)
def test_unset_variable_without_default_is_named(name: str) -> None:
    with pytest.raises(ExpansionError) as e:
        expand(f"x${{{name}}}y", {})
    assert e.value.variable == name
    assert name in str(e.value)


_KEY = r'(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*")'
_LINE = re.compile(
    rf"^(?P<file>.+):(?P<line>\d+): (?P<key>-|{_KEY}(?:\.{_KEY})*): (?P<message>[^\n]+)$"
)

yamlish = st.text(alphabet=string.ascii_letters[:6] + "0123:-[]{}\n #&*!|>'\"$,?%@`\t<_./")


def _mutations() -> st.SearchStrategy[str]:
    """BASE with a few characters deleted, inserted or replaced."""

    @st.composite
    def mutate(draw: st.DrawFn) -> str:
        text = BASE
        for _ in range(draw(st.integers(1, 4))):
            i = draw(st.integers(0, len(text)))
            j = draw(st.integers(i, min(len(text), i + 8)))
            text = text[:i] + draw(yamlish.filter(lambda s: len(s) < 8)) + text[j:]
        return text

    return mutate()


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.one_of(yamlish, _mutations()))
@example("[" * 3000)
@example("a: &a [*a, *a]")
@example("a: !!binary 'AAA='")
@example("? [a]\n: b")
@example("a: 2024-13-45")
@example("store: {id: !!int x}")
@example("<<: 3")
def test_any_input_gives_config_or_located_problems(tmp_path: Path, text: str) -> None:
    (tmp_path / "keys").mkdir(exist_ok=True)
    (tmp_path / "keys" / "hub.pub.pem").write_bytes(public_pem())
    file = tmp_path / "agent.yaml"
    file.write_text(text, encoding="utf-8")
    try:
        load_config(file, environ={"X": "1"})
    except ConfigError as e:
        assert e.problems
        lines = [p.line for p in e.problems]
        assert lines == sorted(lines)
        for p in e.problems:
            m = _LINE.match(str(p))
            assert m, str(p)
            assert m["file"] == str(file)
            assert 1 <= p.line <= text.count("\n") + 2
