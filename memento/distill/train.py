"""Training a LoRA adapter on distilled examples, with the anti-forgetting options.

    model = lora_model(base, TrainConfig(steps=40))
    result = train_adapter(model, tokenizer, data.train, config, replay_texts=REPLAY_PASSAGES)

One flat loop (CleanRL style). Each step's batch holds `batch_size` rows: the task examples and,
with `replay_ratio` > 0, that share of rows of general text (general replay, as in GeRe). The loss
is the token-mean cross-entropy on the replies of the task rows and on the replay text, weighted by
their share of the batch, plus `kl_weight` times KL(base || adapter) on the replay tokens, the base
being the same network with the adapter switched off (no second copy in memory). With
`interpolation` > 0 a slow copy of the adapter follows the trained one as an exponential moving
average (the slow learner of I-LoRA, Ren et al. 2024) and is what gets saved.

A batch depends only on (seed, step), so a run resumed from a checkpoint (one dict: adapter,
slow adapter, optimizer, config, step) goes on exactly as it would have.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from memento.distill.model import (
    IGNORE,
    collate,
    example_tokens,
    import_training,
    pad_id,
    resolve_device,
    text_tokens,
)
from memento.distill.selection import Example
from memento.errors import ValidationError

ADAPTER_NAME = "candidate"
"""The peft adapter name under which the adapter being trained lives."""


@dataclass
class TrainConfig:
    """LoRA shape, optimiser and the anti-forgetting options of one distillation."""

    r: int = 8
    """LoRA rank."""
    alpha: int = 16
    """LoRA scale numerator: the update is scaled by alpha / r."""
    dropout: float = 0.05
    """Dropout on the LoRA input."""
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")
    """Linear layers that get an adapter."""
    lr: float = 1e-3
    """AdamW learning rate (constant)."""
    steps: int = 40
    """Optimiser steps."""
    batch_size: int = 4
    """Rows per step, task and replay together."""
    seed: int = 0
    """Seed of the adapter's initialisation, the batches and dropout."""
    max_length: int = 256
    """Tokens per row at most (the prompt is cut from the left, the reply kept)."""
    replay_ratio: float = 0.25
    """Share of each batch that is general replay text; 0 turns replay off."""
    kl_weight: float = 0.5
    """Weight of KL(base || adapter) on the replay tokens; 0 turns it off (needs replay)."""
    interpolation: float = 0.0
    """EMA decay of the saved slow adapter (I-LoRA); 0 saves the trained adapter itself."""
    warm_start: bool = True
    """Start from the promoted adapter when there is one (else from a fresh adapter)."""
    grad_clip: float = 1.0
    """Clip the gradient norm to this."""
    checkpoint_every: int = 10
    """Write the resumable checkpoint every this many steps (and at the end)."""
    device: str = "auto"
    """'auto' (CUDA when available, else CPU), 'cpu' or 'cuda'."""

    def __post_init__(self) -> None:
        self.target_modules = tuple(self.target_modules)
        rules = [
            (self.r >= 1 and self.alpha > 0, f"r={self.r} and alpha={self.alpha} must be positive"),
            (0.0 <= self.dropout < 1.0, f"dropout={self.dropout} must be in [0, 1)"),
            (self.lr > 0 and self.steps >= 1, f"lr={self.lr} and steps={self.steps} must be positive"),
            (self.batch_size >= 1 and self.max_length >= 8, f"batch_size={self.batch_size} >= 1, max_length={self.max_length} >= 8"),
            (0.0 <= self.replay_ratio < 1.0, f"replay_ratio={self.replay_ratio} must be in [0, 1)"),
            (self.replay_ratio == 0 or self.batch_size >= 2,
             f"replay_ratio={self.replay_ratio} needs batch_size >= 2 (a replay row and a task row); raise batch_size"),
            (self.kl_weight >= 0 and (self.kl_weight == 0 or self.replay_ratio > 0),
             f"kl_weight={self.kl_weight} is taken on replay text, so it needs replay_ratio > 0; set both or neither"),
            (0.0 <= self.interpolation < 1.0, f"interpolation={self.interpolation} is an EMA decay in [0, 1), e.g. 0.9"),
            (bool(self.target_modules), "target_modules is empty; name the linear layers, e.g. ('q_proj', 'v_proj')"),
        ]
        for ok, message in rules:
            if not ok:
                raise ValidationError(f"training config: {message}")

    @property
    def replay_rows(self) -> int:
        """Replay rows per batch: the ratio's share, at least one when replay is on, leaving a task row."""
        if self.replay_ratio == 0:
            return 0
        return min(self.batch_size - 1, max(1, round(self.batch_size * self.replay_ratio)))


@dataclass
class TrainResult:
    """What a training run did: steps, losses per step, time per step, parameter count."""

    steps: int
    resumed_from: int
    seconds: float
    seconds_per_step: float
    trainable_parameters: int
    losses: list[dict[str, float]] = field(default_factory=list)


def lora_model(base: Any, config: TrainConfig, *, init_from: str | Path | None = None) -> Any:
    """`base` wrapped by peft with a trainable adapter named 'candidate': fresh, or a copy of `init_from`."""
    torch, _, peft = import_training()
    torch.manual_seed(config.seed)
    if init_from is not None:
        return peft.PeftModel.from_pretrained(base, str(init_from), adapter_name=ADAPTER_NAME, is_trainable=True)
    lora = peft.LoraConfig(r=config.r, lora_alpha=config.alpha, lora_dropout=config.dropout,
                           target_modules=list(config.target_modules), task_type="CAUSAL_LM")
    return peft.get_peft_model(base, lora, adapter_name=ADAPTER_NAME)


def train_adapter(model: Any, tokenizer: Any, train: Sequence[Example], config: TrainConfig, *,
                  replay_texts: Sequence[str] = (), checkpoint: str | Path | None = None,
                  fingerprint: str = "", progress: bool = True) -> TrainResult:
    """Train the 'candidate' adapter of a peft `model` on `train`; resume from `checkpoint` if it exists.

    `fingerprint` (e.g. the data hash) is stored in the checkpoint; a checkpoint of other data or
    another config is refused rather than silently continued.
    """
    torch, _, _ = import_training()
    if not train:
        raise ValidationError("no training examples; lower min_reward or add successful cases to the bank")
    if config.replay_rows and not replay_texts:
        raise ValidationError(f"replay_ratio={config.replay_ratio} but no replay text was given; pass replay_texts "
                              f"(e.g. memento.distill.general_text.REPLAY_PASSAGES) or set replay_ratio=0")
    device = resolve_device(config.device)
    model.to(device)
    trained = {name: p for name, p in model.named_parameters() if p.requires_grad}
    optimizer = torch.optim.AdamW(trained.values(), lr=config.lr, weight_decay=0.0)
    slow = {name: p.detach().clone() for name, p in trained.items()} if config.interpolation else {}
    start, losses = 0, []
    path = Path(checkpoint) if checkpoint else None
    if path is not None and path.exists():
        start, losses = _resume(path, config, fingerprint, trained, slow, optimizer)
    task_rows = [example_tokens(tokenizer, e, config.max_length) for e in train]
    replay_rows = [text_tokens(tokenizer, t, config.max_length) for t in replay_texts]
    order = list(range(len(task_rows)))
    random.Random(config.seed).shuffle(order)
    n_replay, n_task = config.replay_rows, config.batch_size - config.replay_rows
    bar = _progress(progress, config.steps, start)
    began = time.perf_counter()
    model.train()
    for step in range(start, config.steps):
        torch.manual_seed(config.seed * 1_000_003 + step)  # dropout repeats on resume
        rows = [task_rows[order[(step * n_task + j) % len(order)]] for j in range(n_task)]
        rows += random.Random(config.seed * 1_000_003 + step).sample(replay_rows, min(n_replay, len(replay_rows)))
        metrics = _step(model, optimizer, collate(rows, pad_id(tokenizer)).to(device), n_task, config, trained)
        if slow:
            with torch.no_grad():
                for name, p in trained.items():
                    slow[name].mul_(config.interpolation).add_(p.detach(), alpha=1 - config.interpolation)
        losses.append(metrics)
        bar.update(1)
        bar.set_postfix(loss=f"{metrics['losses/total']:.3f}")
        if path is not None and ((step + 1) % config.checkpoint_every == 0 or step + 1 == config.steps):
            _save_checkpoint(path, config, fingerprint, step + 1, trained, slow, optimizer, losses)
    bar.close()
    seconds = time.perf_counter() - began
    model.eval()
    if slow:
        with torch.no_grad():
            for name, p in trained.items():
                p.copy_(slow[name])
    ran = config.steps - start
    return TrainResult(steps=config.steps, resumed_from=start, seconds=seconds,
                       seconds_per_step=seconds / ran if ran else 0.0,
                       trainable_parameters=sum(p.numel() for p in trained.values()), losses=losses)


def _step(model: Any, optimizer: Any, batch: Any, n_task: int, config: TrainConfig, trained: dict) -> dict[str, float]:
    """One optimiser step; returns the losses under namespaced keys."""
    torch, _, _ = import_training()
    functional = torch.nn.functional
    logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits[:, :-1]
    labels = batch.labels[:, 1:]
    token_loss = functional.cross_entropy(logits.transpose(1, 2), labels, ignore_index=IGNORE, reduction="none")
    mask = (labels != IGNORE).float()
    share = n_task / len(labels)
    task_loss = (token_loss[:n_task] * mask[:n_task]).sum() / mask[:n_task].sum().clamp(min=1)
    total = share * task_loss
    metrics = {"losses/task": task_loss.item()}
    if len(labels) > n_task:
        replay_mask = mask[n_task:]
        replay_loss = (token_loss[n_task:] * replay_mask).sum() / replay_mask.sum().clamp(min=1)
        total = total + (1 - share) * replay_loss
        metrics["losses/replay"] = replay_loss.item()
        if config.kl_weight:
            with torch.no_grad(), model.disable_adapter():
                base_logits = model(input_ids=batch.input_ids[n_task:],
                                    attention_mask=batch.attention_mask[n_task:]).logits[:, :-1]
            base_logp = functional.log_softmax(base_logits, dim=-1)
            logp = functional.log_softmax(logits[n_task:], dim=-1)
            kl_per_token = (base_logp.exp() * (base_logp - logp)).sum(-1)
            kl = (kl_per_token * replay_mask).sum() / replay_mask.sum().clamp(min=1)
            total = total + config.kl_weight * kl
            metrics["losses/kl"] = kl.item()
    optimizer.zero_grad(set_to_none=True)
    total.backward()
    torch.nn.utils.clip_grad_norm_(list(trained.values()), config.grad_clip)
    optimizer.step()
    metrics["losses/total"] = total.item()
    return metrics


def _save_checkpoint(path: Path, config: TrainConfig, fingerprint: str, step: int, trained: dict, slow: dict,
                     optimizer: Any, losses: list) -> None:
    torch, _, _ = import_training()
    checkpoint = {
        "adapter": {name: p.detach().cpu() for name, p in trained.items()},
        "slow": {name: p.detach().cpu() for name, p in slow.items()},
        "optimizer": optimizer.state_dict(),
        "config": _resumable(config),
        "fingerprint": fingerprint,
        "step": step,
        "losses": losses,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.partial-{os.getpid()}")
    torch.save(checkpoint, partial)
    os.replace(partial, path)  # a crash mid-write leaves the previous checkpoint whole


def _resume(path: Path, config: TrainConfig, fingerprint: str, trained: dict, slow: dict, optimizer: Any) -> tuple[int, list]:
    torch, _, _ = import_training()
    checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    if checkpoint.get("config") != _resumable(config) or checkpoint.get("fingerprint") != fingerprint:
        raise ValidationError(f"checkpoint '{path}' was written for another config or other data; delete it to "
                              f"start over, or resume with the config and data it was written for")
    if checkpoint["step"] > config.steps:
        raise ValidationError(f"checkpoint '{path}' is at step {checkpoint['step']}, past steps={config.steps}; "
                              f"raise steps or delete the checkpoint")
    with torch.no_grad():
        for name, p in trained.items():
            p.copy_(checkpoint["adapter"][name])
            if slow:
                slow[name].copy_(checkpoint["slow"][name])
    optimizer.load_state_dict(checkpoint["optimizer"])
    return int(checkpoint["step"]), list(checkpoint["losses"])


def _resumable(config: TrainConfig) -> dict[str, Any]:
    """The config as a checkpoint records it: all but `steps` (a run may be resumed to go further)
    and the device (a run started on a GPU may finish on a CPU)."""
    values = asdict(config)
    values.pop("steps")
    values.pop("device")
    values["target_modules"] = list(values["target_modules"])
    return values


def _progress(show: bool, total: int, start: int) -> Any:
    from tqdm import tqdm

    # disable=None: a bar on a terminal, nothing in pipes and logs; disable=True when asked for none.
    return tqdm(total=total, initial=start, desc="distilling", unit="step", disable=None if show else True)
