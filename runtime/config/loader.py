"""Load any of shopgate's YAML configs (the agent's, the hub's): every problem at once,
each with its line.

Steps: read the file; compose the YAML keeping line marks (duplicate keys are problems);
expand `${VAR}` in string values; validate with the model; run the caller's checks
(cross references, key files). Problems found at any step are collected, and the later
steps run as far as the earlier ones allow.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from runtime.config.errors import ConfigError, Problem
from runtime.config.messages import explain
from runtime.config.yamltree import Loc, Tree, build

_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]+")


M = TypeVar("M", bound=BaseModel)
Checks = Callable[[M], Iterable[tuple[Loc, str]]]


def load_model(
    path: Path, model: type[M], checks: Checks[M], environ: Mapping[str, str] | None = None
) -> M:
    """Any of shopgate's YAML configs (the agent's, the hub's): read with line marks,
    expand `${VAR}`, validate with `model`, then run `checks` (cross references, key
    files) on the valid result. Every problem is reported at once, with its line."""
    path = Path(path)
    env = os.environ if environ is None else environ
    text = _read(path)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as e:
        raise ConfigError([_yaml_problem(path, e)]) from None
    except yaml.reader.ReaderError as e:
        line = text.count("\n", 0, e.position) + 1
        message = f"invalid YAML: character {e.character!r} is not allowed"
        raise ConfigError([Problem(path, line, "-", message)]) from None
    except RecursionError:
        raise ConfigError([Problem(path, 1, "-", "invalid YAML: nested too deeply")]) from None
    if root is None:
        raise ConfigError([Problem(path, 1, "-", "the file holds no settings")])
    if not isinstance(root, yaml.MappingNode):
        message = "the top level must be a mapping of settings (key: value lines)"
        raise ConfigError([Problem(path, root.start_mark.line + 1, "-", message)])
    try:
        tree = build(root, env)
    except RecursionError:
        raise ConfigError([Problem(path, 1, "-", "invalid YAML: nested too deeply")]) from None

    problems = [_problem(path, tree, p.loc, p.message, p.line) for p in tree.problems]
    cfg: M | None = None
    try:
        cfg = model.model_validate(tree.data, context={"base_dir": path.absolute().parent})
    except ValidationError as e:
        for m in explain(e.errors(), tree.data, model):
            if not tree.is_followup(m.loc):
                problems.append(_problem(path, tree, m.loc, m.text))
    if cfg is not None:
        for loc, message in checks(cfg):
            if not tree.is_followup(loc):
                problems.append(_problem(path, tree, loc, message))
    if problems:
        raise ConfigError(problems)
    assert cfg is not None
    return cfg


def check_config_main(path: Path, load: Callable[[Path], object]) -> int:
    """`check-config`: print `ok` (0) or one line per problem (2)."""
    try:
        load(path)
    except ConfigError as e:
        for p in e.problems:
            print(p, flush=True)
        return 2
    print("ok", flush=True)
    return 0


def _read(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise ConfigError([Problem(path, 0, "-", f"cannot read: {e.strerror or e}")]) from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        message = f"not UTF-8 text (byte 0x{raw[e.start]:02x}); save the file as UTF-8"
        raise ConfigError([Problem(path, line, "-", message)]) from None


def _yaml_problem(path: Path, e: yaml.MarkedYAMLError) -> Problem:
    mark = e.problem_mark or e.context_mark
    line = mark.line + 1 if mark is not None else 1
    message = f"invalid YAML: {e.problem or e.context}"
    if e.context and e.problem and e.context_mark is not None:
        message += f" ({e.context} at line {e.context_mark.line + 1})"
    if e.problem and "'\\t'" in e.problem:
        message += "; indent with spaces, not tabs"
    return Problem(path, line, "-", message)


def _problem(path: Path, tree: Tree, loc: Loc, message: str, line: int | None = None) -> Problem:
    key = ".".join(_key_part(part) for part in loc) or "-"
    one_line = re.sub(r"\s*\n\s*", " ", message).strip()
    return Problem(path, tree.line_for(loc) if line is None else line, key, one_line)


def _key_part(part: object) -> str:
    # A key with spaces, dots or colons is quoted so the line still splits cleanly.
    text = str(part)
    return text if _PLAIN_KEY.fullmatch(text) else json.dumps(text, ensure_ascii=False)
