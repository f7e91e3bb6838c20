"""Paths in a config file: relative ones resolve against the file's folder (the loader
passes it as validation context, `base_dir`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, ValidationInfo


def _resolve_path(value: Path, info: ValidationInfo) -> Path:
    base = (info.context or {}).get("base_dir")
    if base is not None and not value.is_absolute():
        value = Path(base) / value
    return Path(value)


ConfigPath = Annotated[Path, AfterValidator(_resolve_path)]
