"""docs/config.md is generated from the schema and kept in step with it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from pydantic import BaseModel

from agent.config import load_config, schema
from agent.config.docs import INTRO, render
from agent.config.schema import AgentConfig
from tests.agent.config.config_files import public_pem

REPO = Path(__file__).resolve().parents[3]


def test_docs_file_is_up_to_date() -> None:
    committed = (REPO / "docs" / "config.md").read_text(encoding="utf-8")
    assert committed == render(), (
        "docs/config.md is stale: run `python -m agent.config.docs > docs/config.md`"
    )


def test_module_prints_the_docs() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "agent.config.docs"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out == render()


def _models(model: type[BaseModel], seen: set[type[BaseModel]]) -> set[type[BaseModel]]:
    if model in seen:
        return seen
    seen.add(model)
    for f in model.model_fields.values():
        for m in re.findall(r"agent\.config\.schema\.(\w+)", repr(f.annotation)):
            _models(getattr(schema, m), seen)
    return seen


def test_every_key_is_described_and_listed() -> None:
    doc = render()
    models = _models(AgentConfig, set())
    assert len(models) > 10
    for model in models:
        for name, f in model.model_fields.items():
            assert f.description, f"{model.__name__}.{name} has no description"
            assert re.search(rf"`[\w.\[\]]*\b{name}` \|", doc), name


def test_example_in_docs_is_a_valid_config(tmp_path: Path) -> None:
    [example] = re.findall(r"```yaml\n(.*?)```", INTRO, re.S)
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "hub-2024.pub.pem").write_bytes(public_pem())
    (tmp_path / "agent.yaml").write_text(example, encoding="utf-8")
    cfg = load_config(tmp_path / "agent.yaml", environ={"SHOPGATE_STORE_TOKEN": "t" * 32})
    assert cfg.store.id == "store-042"
    assert cfg.hub.token == "t" * 32
