"""Versions beside the bank; promote only what passed its gate; rollback in one step."""

import json

import pytest

from memento.distill import AdapterRegistry
from memento.distill.selection import Example
from memento.errors import NotFoundError, ValidationError

HELDOUT = [Example(case_id="c1", messages=(("user", "Question: q?"),), completion="Answer: a", answer="a")]


def add_version(registry, tmp_path, passed: bool):
    folder = tmp_path / f"adapter-{len(registry.versions())}"
    folder.mkdir()
    (folder / "adapter_model.safetensors").write_bytes(b"weights")  # the registry moves folders, it reads no weights
    return registry.add(folder, {"gate": {"passed": passed, "failed": [] if passed else ["general_ppl"]}}, HELDOUT)


def test_versions_promote_and_rollback(tmp_path):
    registry = AdapterRegistry(tmp_path / "cases.db")
    assert registry.versions() == [] and registry.promoted() is None
    first, second = add_version(registry, tmp_path, True), add_version(registry, tmp_path, True)
    assert [v.name for v in registry.versions()] == ["v0001", "v0002"]
    assert (tmp_path / "cases.db.adapters" / "v0001" / "adapter" / "adapter_model.safetensors").exists()
    assert first.heldout() == HELDOUT and first.manifest["version"] == "v0001"
    registry.promote("v0001")
    registry.promote("v0002")
    assert registry.promoted().name == "v0002" and registry.history() == ["v0001", "v0002"]
    assert registry.rollback().name == "v0001"
    assert registry.rollback() is None and registry.promoted() is None  # back to the base model
    with pytest.raises(ValidationError, match="nothing to roll back"):
        registry.rollback()
    assert second.gate_passed


def test_a_failed_gate_is_never_promoted(tmp_path):
    registry = AdapterRegistry(tmp_path / "cases.db")
    add_version(registry, tmp_path, True)
    registry.promote("v0001")
    add_version(registry, tmp_path, False)
    with pytest.raises(ValidationError, match="v0002 failed its gate \\(general_ppl\\)"):
        registry.promote("v0002")
    assert registry.promoted().name == "v0001"  # nothing changed
    state = json.loads((registry.root / "state.json").read_text())
    assert state == {"promoted": "v0001", "history": ["v0001"]}


def test_an_unknown_version_names_the_ones_there_are(tmp_path):
    registry = AdapterRegistry(tmp_path / "cases.db")
    add_version(registry, tmp_path, True)
    with pytest.raises(NotFoundError, match="'v0009' is not in .*it has: v0001"):
        registry.promote("v0009")
