"""`memento distill ...`: distil a bank's successful cases into a LoRA adapter, and manage its versions.

Every command is one call on `memento.distill`: `run` is `distill()`, the others are
`AdapterRegistry` methods. Adapters live beside the bank, in `<bank>.adapters/`.
"""

from pathlib import Path
from typing import Annotated, Any

import typer

from memento.cli.banks import is_url, open_bank
from memento.cli.options import BankPath, EmbedderName
from memento.cli.output import output_options
from memento.errors import NotFoundError, ValidationError

app = typer.Typer(help="Distil the case bank into a LoRA adapter, gated against forgetting.", no_args_is_help=True)

Version = Annotated[str, typer.Argument(help="An adapter version, e.g. v0002 (see `memento distill list`).",
                                        show_default=False)]


def _registry(bank_path: str | Path) -> Any:
    from memento.distill.registry import AdapterRegistry

    return AdapterRegistry(_bank_file(bank_path))


def _bank_file(bank_path: str | Path) -> Path:
    """The bank's file (adapters live beside it); a server's bank or a missing file is an error."""
    if is_url(bank_path):
        raise ValidationError(f"adapters live in a folder beside a bank file, and {bank_path} is a server's bank; "
                              f"copy it to a file first (`memento bank copy URL cases.db`) and distil that")
    bank_path = Path(bank_path)
    if not bank_path.is_file():
        raise NotFoundError(f"bank '{bank_path}' does not exist; give the bank the adapters were distilled from "
                            f"(a new bank is made with `memento init {bank_path}`)")
    return bank_path


def _row(version: Any, promoted: str | None) -> dict[str, Any]:
    manifest = version.manifest
    gate = manifest.get("gate", {})
    return {"version": version.name, "promoted": version.name == promoted, "gate_passed": bool(gate.get("passed")),
            "failed": gate.get("failed", []), "created_at": manifest.get("created_at"),
            "train_cases": len(manifest.get("provenance", {}).get("train_case_ids", [])),
            "data_hash": manifest.get("data_hash", "")[:12], "adapter_bytes": manifest.get("adapter_bytes")}


@app.command(short_help="Train, gate and store a new adapter; promote it if the gate passes.")
@output_options
def run(bank_path: BankPath, embedder: EmbedderName = None,
        steps: Annotated[int, typer.Option(min=1, help="Training steps.")] = 40,
        lr: Annotated[float, typer.Option(help="Learning rate.")] = 1e-3,
        r: Annotated[int, typer.Option(min=1, help="LoRA rank.")] = 8,
        batch_size: Annotated[int, typer.Option(min=1, help="Rows per step (task and replay).")] = 4,
        replay_ratio: Annotated[float, typer.Option(help="Share of each batch that is general replay text (0: off).")] = 0.25,
        kl_weight: Annotated[float, typer.Option(help="Weight of the KL term to the base on replay text (0: off).")] = 0.5,
        interpolation: Annotated[float, typer.Option(help="EMA decay of the saved slow adapter, I-LoRA style (0: off).")] = 0.0,
        min_reward: Annotated[float, typer.Option(help="Distil only cases with at least this reward.")] = 1.0,
        heldout_fraction: Annotated[float, typer.Option(help="Share of the chosen cases kept for the gate.")] = 0.2,
        context: Annotated[str, typer.Option(help="Prompt context: none, procedure or cases.")] = "procedure",
        policy: Annotated[Path | None, typer.Option(help="A policy checkpoint whose usefulness filters the cases.")] = None,
        min_usefulness: Annotated[float | None, typer.Option(help="With --policy: keep cases rated at least this.")] = None,
        max_drop_points: Annotated[float, typer.Option(help="Gate: most points a guarded score may lose.")] = 2.0,
        promote: Annotated[bool, typer.Option(help="Promote the adapter when its gate passes.")] = True,
        generate: Annotated[bool, typer.Option(
            help="Gate on greedy replies too (EM, general QA accuracy); --no-generate is several times faster on a CPU.")] = True,
        model: Annotated[str | None, typer.Option(help="Base model folder (default: the packaged SmolLM2).")] = None,
        device: Annotated[str, typer.Option(help="auto (GPU when there is one), cpu or cuda.")] = "auto",
        seed: Annotated[int, typer.Option(help="Seed of the split, the adapter and the batches.")] = 0,
        ) -> dict[str, Any]:
    """Example: memento distill run --bank cases.db --steps 40

    Choose the bank's successful cases (near-duplicates dropped, a held-out slice kept), train a
    LoRA adapter on them with general replay, a KL term and optional EMA interpolation, gate it
    (held-out cases must improve; the general probe and the previous adapter's cases must not
    drop), and store it as the next version. A passed gate promotes it; a failed one never does.
    """
    from memento.distill import (
        DistillConfig,
        GateRule,
        SelectionConfig,
        TrainConfig,
        distill,
    )

    config = DistillConfig(
        selection=SelectionConfig(min_reward=min_reward, heldout_fraction=heldout_fraction, context=context,  # type: ignore[arg-type]
                                  min_usefulness=min_usefulness, seed=seed),
        train=TrainConfig(steps=steps, lr=lr, r=r, alpha=2 * r, batch_size=batch_size, replay_ratio=replay_ratio,
                          kl_weight=kl_weight, interpolation=interpolation, device=device, seed=seed),
        gate=GateRule(max_drop_points=max_drop_points), model=model, promote=promote, generate=generate)
    with open_bank(_bank_file(bank_path), embedder) as bank:
        usefulness = None
        if policy is not None:
            from memento.plugins import plugin

            usefulness = plugin("policies").load_policy(policy, bank).usefulness
        report = distill(bank, config, usefulness=usefulness)
    return {"version": report["version"], "promoted": report["promoted"], "gate_passed": report["gate"]["passed"],
            "checks": [c["why"] for c in report["gate"]["checks"]], "data_hash": report["data_hash"],
            "train_cases": len(report["provenance"]["train_case_ids"]),
            "heldout_cases": len(report["provenance"]["heldout_case_ids"]),
            "seconds_per_step": report["training"]["seconds_per_step"], "adapter_bytes": report["adapter_bytes"],
            "path": report["path"]}


@app.command("list", short_help="Every adapter distilled from the bank, and which one is promoted.")
@output_options
def list_(bank_path: BankPath) -> list[dict[str, Any]]:
    """Example: memento distill list --bank cases.db --table

    One row per adapter version, oldest first: whether its gate passed, what failed, how many
    cases it was trained on, its data hash and size, and whether it is the promoted one.
    """
    registry = _registry(bank_path)
    promoted = registry.promoted()
    return [_row(v, promoted.name if promoted else None) for v in registry.versions()]


@app.command(short_help="An adapter's whole manifest: config, provenance, gate report.")
@output_options
def show(version: Version, bank_path: BankPath) -> dict[str, Any]:
    """Example: memento distill show v0001 --bank cases.db

    The manifest of one version: the training config, the provenance (case ids, bank
    generation, data hash), the base model, timings, size, the gate's report check by check, and
    how to serve it: its name for `vllm serve --enable-lora --lora-modules NAME=PATH`.
    """
    found = _registry(bank_path).get(version)
    return {**found.manifest, "path": str(found.path), "served_name": found.served_name,
            "vllm_lora_module": f"{found.served_name}={found.adapter_dir}"}


@app.command(short_help="Make a version the adapter the backends use (only one whose gate passed).")
@output_options
def promote(version: Version, bank_path: BankPath) -> dict[str, Any]:
    """Example: memento distill promote v0002 --bank cases.db

    Make VERSION the promoted adapter. A version whose gate failed is refused.
    """
    registry = _registry(bank_path)
    registry.promote(version)
    return {"promoted": version, "history": registry.history()}


@app.command(short_help="Go back to the adapter promoted before (or to the base model).")
@output_options
def rollback(bank_path: BankPath) -> dict[str, Any]:
    """Example: memento distill rollback --bank cases.db

    Undo the last promotion: the version promoted before it is in use again, or the base
    model when there was none.
    """
    registry = _registry(bank_path)
    back = registry.rollback()
    return {"promoted": back.name if back else None, "history": registry.history()}
