"""What the config loader reports: problems located by file, line and dotted key."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a config file, at a line and a dotted key (`doors.0.lock.board`).

    Line 0 means the file as a whole (it could not be read); key `-` means no key applies.
    """

    file: Path
    line: int
    key: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.key}: {self.message}"


class ConfigError(Exception):
    """The config is not usable; `problems` holds every problem found, ordered by line."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems, key=lambda p: p.line)
        super().__init__("\n".join(str(p) for p in self.problems))
