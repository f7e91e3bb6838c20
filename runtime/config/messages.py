"""Pydantic validation errors rewritten as plain, actionable messages at data paths.

Pydantic's error locations mix data keys with names it inserts for union members and
discriminator tags (`("devices", 0, "lockbus", "port")`); walking the location against
the data that was validated separates the two. When a value fails every member of a plain
union (`hours: list | map`), only the member that matched the value's shape is reported;
when none did, one "expected X or Y" message stands for all of them.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from pydantic_core import ErrorDetails

from runtime.config.yamltree import Loc

# Errors that only say "this value has the wrong shape for this union member".
_SHAPE: dict[str, str] = {
    "dict_type": "a mapping (indented key: value lines)",
    "model_type": "a mapping (indented key: value lines)",
    "model_attributes_type": "a mapping (indented key: value lines)",
    "list_type": "a list",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "text",
    "none_required": "nothing",
}
_SECRET_WORDS = ("token", "secret", "password")


@dataclass(frozen=True)
class Message:
    loc: Loc
    text: str


def explain(errors: Iterable[ErrorDetails], data: Any, model: type[BaseModel]) -> list[Message]:
    """One message per problem in `errors`, from validating `data` against `model`."""
    located = [_Located(e, *_split_loc(e, data)) for e in errors]
    out: list[_Located] = []
    for group in _union_groups(located):
        out.extend(group)
    return [_message(item, data, model) for item in _dedupe(out)]


@dataclass
class _Located:
    error: ErrorDetails
    path: Loc
    # (position in path, name) of each location part that was not a data key.
    tags: tuple[tuple[int, str | int], ...]


def _split_loc(error: ErrorDetails, data: Any) -> tuple[Loc, tuple[tuple[int, str | int], ...]]:
    path: list[str | int] = []
    tags: list[tuple[int, str | int]] = []
    cur = data
    loc = error["loc"]
    for i, part in enumerate(loc):
        if isinstance(cur, dict) and _has_key(cur, part):
            path.append(part)
            cur = cur[part]
        elif isinstance(cur, list) and isinstance(part, int) and 0 <= part < len(cur):
            path.append(part)
            cur = cur[part]
        elif i == len(loc) - 1 and error["type"] == "missing":
            path.append(part)
        else:
            tags.append((len(path), part))
    return tuple(path), tuple(tags)


def _has_key(d: dict[Any, Any], key: Any) -> bool:
    # True == 1 in Python; a YAML key `1` must not match pydantic's loc part True.
    return any(k == key and type(k) is type(key) for k in d)


def _union_groups(items: list[_Located]) -> Iterable[list[_Located]]:
    plain = [i for i in items if not i.tags]
    yield plain
    by_point: dict[Loc, list[_Located]] = {}
    for item in items:
        if item.tags:
            by_point.setdefault(item.path[: item.tags[0][0]], []).append(item)
    for point, group in by_point.items():
        branches: dict[str | int, list[_Located]] = {}
        for item in group:
            branches.setdefault(item.tags[0][1], []).append(item)
        if len(branches) == 1:
            yield group
            continue
        shape_only = {
            b: all(i.error["type"] in _SHAPE and i.path == point for i in errs)
            for b, errs in branches.items()
        }
        relevant = [errs for b, errs in branches.items() if not shape_only[b]]
        if relevant:
            yield [i for errs in relevant for i in errs]
        else:
            yield [_merged_shape_error(point, group)]


def _merged_shape_error(point: Loc, group: list[_Located]) -> _Located:
    wanted = [_SHAPE[i.error["type"]] for i in group if i.error["type"] != "none_required"]
    expected = " or ".join(dict.fromkeys(wanted))
    error: ErrorDetails = {
        "type": "union_shape",
        "loc": point,
        "msg": "",
        "input": group[0].error["input"],
        "ctx": {"expected": expected},
    }
    return _Located(error, point, ())


def _dedupe(items: list[_Located]) -> list[_Located]:
    seen: set[tuple[Loc, str, str]] = set()
    out = []
    for item in items:
        ident = (item.path, item.error["type"], item.error["msg"])
        if ident not in seen:
            seen.add(ident)
            out.append(item)
    return out


def _message(item: _Located, data: Any, model: type[BaseModel]) -> Message:
    e, path = item.error, item.path
    kind = e["type"]
    ctx: dict[str, Any] = dict(e.get("ctx") or {})
    name = path[-1] if path else ""
    got = describe(e["input"], secret=is_secret(name))
    if kind == "missing":
        return Message(path, f"missing required key '{name}'")
    if kind == "extra_forbidden":
        fields = _field_names(model, data, path[:-1])
        return Message(path, f"unknown key '{name}'{_did_you_mean(str(name), fields)}")
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        key = str(ctx.get("discriminator", "")).strip("'")
        tags = ctx.get("expected_tags") or ", ".join(
            repr(t) for t in _tags_at(model, data, path, key)
        )
        choices = tags.replace("'", "")
        if kind == "union_tag_not_found":
            return Message((*path, key), f"missing required key '{key}' (one of: {choices})")
        return Message((*path, key), f"unknown {key} {ctx.get('tag')!r} (one of: {choices})")
    if kind == "union_shape":
        return Message(path, f"expected {ctx['expected']}, got {got}")
    if kind == "string_type" and isinstance(e["input"], (bool, int, float)):
        return Message(path, f"expected text, got {got} (put it in quotes to make it text)")
    if kind in _SHAPE:
        return Message(path, f"expected {_SHAPE[kind]}, got {got}")
    if kind == "literal_error":
        if any(tag == "[key]" for _, tag in item.tags):
            return Message(path, f"unknown key {e['input']!r} (one of: {_plain(ctx['expected'])})")
        return Message(path, f"expected {ctx['expected']}, got {got}")
    bounds = {
        "greater_than_equal": ("at least", "ge"),
        "greater_than": ("more than", "gt"),
        "less_than_equal": ("at most", "le"),
        "less_than": ("less than", "lt"),
    }
    if kind in bounds:
        words, key = bounds[kind]
        return Message(path, f"must be {words} {ctx[key]}, got {got}")
    if kind == "too_short":
        n = int(ctx.get("min_length", 1))
        return Message(path, f"needs at least {n} item{'s' if n != 1 else ''}")
    if kind == "string_too_short":
        return Message(path, "must not be empty")
    if kind == "string_pattern_mismatch":
        return Message(path, f"{got} does not match the required pattern {ctx['pattern']}")
    if kind == "value_error":
        return Message(path, str(ctx.get("error") or e["msg"].removeprefix("Value error, ")))
    text = e["msg"]
    return Message(path, text[:1].lower() + text[1:])


def is_secret(name: str | int) -> bool:
    return any(word in str(name).lower() for word in _SECRET_WORDS)


def describe(value: Any, secret: bool = False) -> str:
    """A value as it would read in YAML, short; secrets are never shown."""
    if value is None:
        return "an empty value"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if secret:
        return f"a value of type {type(value).__name__}"
    if isinstance(value, (int, float)):
        return str(value)
    text = str(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return repr(text)


def _plain(expected: str) -> str:
    return expected.replace("'", "").replace(" or ", ", ")


def _did_you_mean(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _field_names(model: type[BaseModel], data: Any, path: Loc) -> list[str]:
    names: list[str] = []
    for m in _models_at(model, data, path):
        names.extend(m.model_fields)
    return list(dict.fromkeys(names))


def _tags_at(model: type[BaseModel], data: Any, path: Loc, key: str) -> list[str]:
    tags: list[str] = []
    for m in _models_at(model, data, path, ignore_tags=True):
        f = m.model_fields.get(key)
        if f is not None and typing.get_origin(f.annotation) is typing.Literal:
            tags.extend(str(a) for a in typing.get_args(f.annotation))
    return list(dict.fromkeys(tags))


def _models_at(
    model: type[BaseModel], data: Any, path: Loc, ignore_tags: bool = False
) -> list[type[BaseModel]]:
    """The models that could describe the value at `path` (several when a union's
    members cannot be told apart by their Literal fields)."""
    current: list[tuple[Any, Any]] = [(model, data)]
    for part in path:
        nxt: list[tuple[Any, Any]] = []
        for tp, value in current:
            child = value[part] if _indexable(value, part) else None
            for t in _unwrap(tp, value, ignore_tags):
                if isinstance(t, type) and issubclass(t, BaseModel):
                    f = t.model_fields.get(str(part))
                    if f is not None:
                        nxt.append((f.annotation, child))
                elif typing.get_origin(t) in (list, dict):
                    nxt.append((typing.get_args(t)[-1], child))
        current = nxt
    out: list[type[BaseModel]] = []
    for tp, value in current:
        out.extend(
            t
            for t in _unwrap(tp, value, ignore_tags)
            if isinstance(t, type) and issubclass(t, BaseModel)
        )
    return out


def _indexable(value: Any, part: str | int) -> bool:
    if isinstance(value, dict):
        return part in value
    return isinstance(value, list) and isinstance(part, int) and 0 <= part < len(value)


def _unwrap(tp: Any, value: Any, ignore_tags: bool) -> list[Any]:
    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        out = []
        for member in typing.get_args(tp):
            out.extend(_unwrap(member, value, ignore_tags))
        if not ignore_tags:
            out = [t for t in out if _tags_match(t, value)] or out
        return out
    return [tp]


def _tags_match(tp: Any, value: Any) -> bool:
    """A model whose Literal fields (discriminators) agree with the value's keys."""
    if not (isinstance(tp, type) and issubclass(tp, BaseModel)) or not isinstance(value, dict):
        return isinstance(tp, type) and issubclass(tp, BaseModel)
    for name, f in tp.model_fields.items():
        if typing.get_origin(f.annotation) is typing.Literal and name in value:
            if value[name] not in typing.get_args(f.annotation):
                return False
    return True
