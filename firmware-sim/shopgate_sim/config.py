"""Reading the simulator config: a YAML file with a `devices` list (see store.yaml)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import yaml
from pydantic import ValidationError

from shopgate_sim.device import DeviceSpec
from shopgate_sim.registry import KINDS


class ConfigError(Exception):
    """The config is not usable; `problems` holds one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def default_config_text() -> tuple[str, str]:
    """(name for messages, text) of the demo store's config shipped with the package."""
    text = resources.files("shopgate_sim").joinpath("store.yaml").read_text(encoding="utf-8")
    return "store.yaml", text


def load_config(path: Path | None) -> list[DeviceSpec]:
    if path is None:
        name, text = default_config_text()
    else:
        name = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError([f"{name}: cannot read: {exc.strerror}"]) from exc
    return parse_config(name, text)


def parse_config(name: str, text: str) -> list[DeviceSpec]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError([f"{name}: not YAML: {' '.join(str(exc).split())}"]) from exc
    if not isinstance(data, dict) or not isinstance(data.get("devices"), list):
        raise ConfigError([f"{name}: devices: a list of devices is required"])
    unknown = sorted(set(data) - {"devices"})
    problems = [f"{name}: {key}: unknown key" for key in unknown]
    specs: list[DeviceSpec] = []
    seen: set[str] = set()
    for i, entry in enumerate(data["devices"]):
        where = f"{name}: devices.{i}"
        if not isinstance(entry, dict):
            problems.append(f"{where}: must be a mapping with id and kind")
            continue
        kind = KINDS.get(str(entry.get("kind")))
        if kind is None:
            problems.append(f"{where}.kind: must be one of {', '.join(sorted(KINDS))}")
            continue
        try:
            spec = kind.spec.model_validate(entry)
        except ValidationError as exc:
            for err in exc.errors():
                loc = ".".join(str(p) for p in err["loc"])
                problems.append(f"{where}{'.' + loc if loc else ''}: {err['msg']}")
            continue
        if spec.id in seen:
            problems.append(f"{where}.id: {spec.id!r} is used twice")
        seen.add(spec.id)
        specs.append(spec)
    if problems:
        raise ConfigError(problems)
    return specs
