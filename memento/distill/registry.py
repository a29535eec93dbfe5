"""Adapters versioned beside their bank: `<bank>.adapters/v0001/`, `v0002/`, ... and which one is in use.

    registry = AdapterRegistry("cases.db")
    registry.versions()                    # every adapter distilled from this bank, oldest first
    registry.promote("v0002")              # only an adapter whose gate passed
    registry.rollback()                    # back to the one promoted before (or to the base model)
    registry.promoted()                    # what the backends load, or None for the base model

A version folder holds `adapter/` (peft weights and config), `manifest.json` (training config,
provenance with the data hash, base model id, the gate's report, timings, size) and
`heldout.jsonl` (its held-out examples, for checking later adapters against forgetting). A version
is written in a temporary folder and renamed into place, so a crash never leaves half a version.
`state.json` holds the promoted version and the promotion history; it is replaced atomically under
a file lock, so promote and rollback are one step each.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock

from memento.distill.selection import Example
from memento.errors import NotFoundError, ValidationError

VERSION = re.compile(r"^v(\d{4,})$")


@dataclass(frozen=True)
class AdapterVersion:
    """One distilled adapter in the registry."""

    name: str
    path: Path

    @property
    def adapter_dir(self) -> Path:
        """The peft folder (adapter_config.json + adapter_model.safetensors)."""
        return self.path / "adapter"

    @property
    def served_name(self) -> str:
        """The name a server knows it by: the bank file's stem and the version, e.g. 'cases-v0002'.

        `vllm serve --lora-modules cases-v0002=<bank>.adapters/v0002/adapter` serves it under this name;
        the openai backend with `distilled_from` asks for it by this name (and loads it if it may).
        """
        return f"{Path(self.path.parent.name.removesuffix('.adapters')).stem}-{self.name}"

    @property
    def manifest(self) -> dict[str, Any]:
        return json.loads((self.path / "manifest.json").read_text(encoding="utf-8"))

    @property
    def gate_passed(self) -> bool:
        return bool(self.manifest.get("gate", {}).get("passed"))

    def heldout(self) -> list[Example]:
        """The held-out examples this adapter was gated on."""
        path = self.path / "heldout.jsonl"
        if not path.exists():
            return []
        return [Example.from_dict(json.loads(line)) for line in path.read_text(encoding="utf-8").splitlines() if line]


class AdapterRegistry:
    """The adapters distilled from one bank, in `<bank>.adapters/` beside the bank file."""

    def __init__(self, bank_path: str | Path):
        bank_path = Path(bank_path)
        self.root = bank_path.with_name(bank_path.name + ".adapters")
        self._lock = FileLock(str(self.root) + ".lock", timeout=30)

    def versions(self) -> list[AdapterVersion]:
        """Every stored version, oldest first."""
        if not self.root.is_dir():
            return []
        found = [p for p in self.root.iterdir() if p.is_dir() and VERSION.match(p.name) and (p / "manifest.json").exists()]
        return [AdapterVersion(p.name, p) for p in sorted(found, key=lambda p: int(p.name[1:]))]

    def get(self, name: str) -> AdapterVersion:
        """The version called `name` (e.g. 'v0002'), or NotFoundError naming the ones there are."""
        for version in self.versions():
            if version.name == name:
                return version
        known = ", ".join(v.name for v in self.versions()) or "none yet"
        raise NotFoundError(f"adapter version {name!r} is not in '{self.root}' (it has: {known}); "
                            f"see `memento distill list --bank ...`")

    def add(self, adapter_dir: Path, manifest: dict[str, Any], heldout: list[Example]) -> AdapterVersion:
        """Store a trained adapter folder as the next version; the folder is moved, not copied."""
        with self._lock:
            self.root.mkdir(parents=True, exist_ok=True)
            numbers = [int(v.name[1:]) for v in self.versions()]
            name = f"v{(max(numbers) if numbers else 0) + 1:04d}"
            partial = self.root / f".{name}.partial-{os.getpid()}"
            shutil.rmtree(partial, ignore_errors=True)
            partial.mkdir()
            try:
                shutil.move(str(adapter_dir), partial / "adapter")
                manifest = {**manifest, "version": name}
                (partial / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str), encoding="utf-8")
                (partial / "heldout.jsonl").write_text(
                    "".join(json.dumps(e.to_dict(), ensure_ascii=False) + "\n" for e in heldout), encoding="utf-8")
                partial.rename(self.root / name)
            except BaseException:
                shutil.rmtree(partial, ignore_errors=True)
                raise
        return AdapterVersion(name, self.root / name)

    def promoted(self) -> AdapterVersion | None:
        """The adapter the backends use now, or None (the base model)."""
        name = self._state()["promoted"]
        if not name:
            return None
        # Every backend with `distilled_from` asks before each call: the folder itself, not a listing of all versions.
        if (self.root / name / "manifest.json").is_file():
            return AdapterVersion(name, self.root / name)
        return self.get(name)  # gone: NotFoundError naming the versions there are

    def history(self) -> list[str]:
        """Versions promoted so far, in order; the last is the promoted one."""
        return list(self._state()["history"])

    def promote(self, name: str) -> AdapterVersion:
        """Make `name` the adapter in use; refused when its gate failed."""
        version = self.get(name)
        gate = version.manifest.get("gate", {})
        if not gate.get("passed"):
            failed = ", ".join(gate.get("failed", [])) or "no gate report"
            raise ValidationError(f"adapter {name} failed its gate ({failed}), so it is never promoted; "
                                  f"see `memento distill show {name}`, then distil again with other settings")
        with self._lock:
            state = self._state()
            if state["promoted"] != name:
                state["history"].append(name)
                state["promoted"] = name
                self._write_state(state)
        return version

    def rollback(self) -> AdapterVersion | None:
        """Go back to the adapter promoted before the current one (None: the base model)."""
        with self._lock:
            state = self._state()
            if not state["history"]:
                raise ValidationError(f"no adapter of '{self.root}' is promoted, so there is nothing to roll back; "
                                      f"the backends already use the base model")
            state["history"].pop()
            state["promoted"] = state["history"][-1] if state["history"] else None
            self._write_state(state)
        return self.get(state["promoted"]) if state["promoted"] else None

    def _state(self) -> dict[str, Any]:
        path = self.root / "state.json"
        if not path.exists():
            return {"promoted": None, "history": []}
        return json.loads(path.read_text(encoding="utf-8"))

    def _write_state(self, state: dict[str, Any]) -> None:
        path = self.root / "state.json"
        partial = path.with_name(f"state.json.partial-{os.getpid()}")
        partial.write_text(json.dumps(state, indent=2), encoding="utf-8")
        os.replace(partial, path)
