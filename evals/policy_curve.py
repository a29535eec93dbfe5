"""What learning adds to case selection, measured in the controlled env against baselines that learn nothing.

The env (`envs/case_usefulness.py`) has few useful (gold) cases per family, look-alikes that
hurt a little and decoys as similar as the gold ones, so similarity, a random K of the top N
and an untrained network all stay near the no-memory success rate. Each learned policy learns
online on the training tasks (select with exploration, reward, record, update) and is scored
every few episodes, without exploration or learning, in three variants:

- `heldout`: new tasks of the families it trained on (what learning should win);
- `transfer`: tasks of families that never appeared in training (a learned policy should not
  fall below similarity there);
- `flip`: after `--flip-at` episodes usefulness changes in half the families (gold and
  look-alikes swap gains); scored on those families' held-out tasks every `--flip-every`
  episodes, against the best K cases after the flip, and against the goal of getting within
  5 points of it within 30 episodes.

The learned policies also run with the settings they had before issue 12 (`*-before`), to show
what the back-off to similarity, the change handling and the episodic-control kernel repair
changed. In the flip variant `neural-told` is the neural policy told where and when the change
happened (it forgets the flipped families' cases at the flip, skipping detection): how far it
gets bounds what better change detection could buy. `neural-eager` lowers the duel's
`prior_confidence` to 0.5: it trades a faster switch after a change for false switches where
nothing changed, and shows that trade in all three variants.

The score is the expected success (the mean chance of success of the chosen sets over the
tasks, free of Bernoulli noise). Every policy sees the same envs and seeds; intervals are 95 %
t-intervals over the seeds.

    python -m memento.evals.policy_curve                                          # 5 seeds, all variants
    python -m memento.evals.policy_curve --seeds 2 --episodes 100 --variants heldout --out runs/policy_curve_smoke

Writes `curve.json` and one PNG per variant under --out (`--images docs/images` also copies the
PNGs there for the README) and prints a table per variant.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import numpy as np

from memento.envs.case_usefulness import CaseUsefulnessEnv, UsefulnessEnvConfig, evaluate, train_online
from memento.policy import DEFAULT_K
from memento.policies import POLICIES
from memento.policies.episodic_control import EpisodicControlConfig, EpisodicControlPolicy
from memento.policies.neural_q import NeuralQConfig, NeuralQPolicy
from memento.policies.random_candidates import RandomCandidatesConfig, RandomCandidatesPolicy

BASELINES = {
    "similarity": "similarity (top-K cosine)",
    "random": "random K of the top 32",
    "untrained": "untrained network (no learning, no back-off)",
}
LEARNED = {
    "neural": "neural soft-Q, set-model credit",
    "neural-copy": "neural soft-Q, copy-the-reward credit",
    "neural-eager": "neural soft-Q, prior_confidence 0.5 (follows the prior on an even record)",
    "episodic": "episodic control (kernel)",
}
BEFORE = {
    "neural-before": "neural as before issue 12 (no back-off, no change handling)",
    "episodic-before": "episodic as before issue 12 (narrow kernel, flat prior)",
}
"""The learned policies with the settings they had before the back-off, change handling and kernel repair."""
TOLD = {"neural-told": "neural, told the change (forgets the flipped families' cases at the flip)"}
"""Flip variant only: a bound on what change detection can buy, since detection itself is skipped."""
LABELS = {**BASELINES, **LEARNED, **BEFORE, **TOLD}
VARIANTS = ("heldout", "transfer", "flip")
ENV_CONFIGS = {
    "heldout": UsefulnessEnvConfig(),
    "transfer": UsefulnessEnvConfig(unseen_families=2),
    "flip": UsefulnessEnvConfig(flip_families=2),
}
RECOVERY_POINTS = 0.05
RECOVERY_EPISODES = 30
T_975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228,
         15: 2.131, 20: 2.086, 30: 2.042}
"""Student-t 97.5 % quantiles by degrees of freedom (a 95 % two-sided interval)."""


def make(name: str, bank, seed: int):
    """A fresh policy called `name` (a baseline or a `make_policy` name) on `bank`."""
    if name == "random":
        return RandomCandidatesPolicy(bank, RandomCandidatesConfig(seed=seed))
    if name == "untrained":
        return NeuralQPolicy(bank, NeuralQConfig(seed=seed, prior_shows=0))
    if name == "neural-told":
        return NeuralQPolicy(bank, NeuralQConfig(name=name, seed=seed))
    if name == "neural-eager":
        return NeuralQPolicy(bank, NeuralQConfig(name=name, seed=seed, prior_confidence=0.5))
    if name == "neural-before":
        return NeuralQPolicy(bank, NeuralQConfig(name=name, seed=seed, prior_shows=0, residual_lr=0, recent_fraction=0,
                                                 change_threshold=0))
    if name == "episodic-before":
        return EpisodicControlPolicy(bank, EpisodicControlConfig(name=name, seed=seed, bandwidth=0.3, prior_weight=0.05,
                                                                 min_similarity=-1, prior_slope=0, min_step=1e-9,
                                                                 weigh_visits=False, change_threshold=0))
    cls, implied = POLICIES[name]
    return cls(bank, cls.config_class(**implied, **({} if name == "similarity" else {"seed": seed})))


def checkpoints(episodes: int, every: int, start: int = 0) -> list[int]:
    """Episode counts at which a policy is scored: start, start + every, ..., start + episodes."""
    points = list(range(start, start + episodes + 1, every))
    return points if points[-1] == start + episodes else points + [start + episodes]


def run_one(name: str, variant: str, seed: int, args: argparse.Namespace, workdir: Path) -> dict:
    """One learning run in one variant: expected success at each checkpoint, and the wall time."""
    env = CaseUsefulnessEnv.create(workdir / f"{variant}-{name}-{seed}.db", _config(variant, seed))
    policy = make(name, env.bank, seed)
    learns = name in LEARNED or name in BEFORE or name in TOLD
    train_rng = np.random.default_rng([seed, 0])
    started = time.perf_counter()

    def score(tasks) -> float:
        # The same evaluation noise at every checkpoint and for every policy.
        return evaluate(policy, env, tasks, np.random.default_rng([seed, 1]))["expected_success"]

    def curve(points: list[int], tasks, done: int) -> list[float]:
        values = []
        for point in points:
            if learns:
                train_online(policy, env, point - done, train_rng)
            done = point
            values.append(score(tasks))
        return values

    k = DEFAULT_K  # what select shows when not told otherwise, as train_online and evaluate call it
    if variant == "flip":
        before = curve(checkpoints(args.flip_at, args.every), env.heldout_tasks, 0)
        flipped = env.flip()
        if name in TOLD:
            policy.forget({case_id for case_id, family in env.family_of.items() if family in flipped})
        tasks = env.tasks_of(env.heldout_tasks, flipped)
        after = curve(checkpoints(args.after_flip, args.flip_every, args.flip_at), tasks, args.flip_at)
        result = {"before": before, "after": after,
                  "optimum": float(np.mean([env.best_success_probability(t, k) for t in tasks]))}
    else:
        tasks = env.unseen_tasks if variant == "transfer" else env.heldout_tasks
        result = {"curve": curve(checkpoints(args.episodes, args.every), tasks, 0),
                  "optimum": float(np.mean([env.best_success_probability(t, k) for t in tasks]))}
    result["seconds"] = time.perf_counter() - started
    result["changes_detected"] = getattr(policy, "changes", 0)
    env.bank.close()
    return result


def _config(variant: str, seed: int) -> UsefulnessEnvConfig:
    return UsefulnessEnvConfig(**{**asdict(ENV_CONFIGS[variant]), "seed": seed})


def interval(values: np.ndarray) -> dict:
    """Mean and 95 % t-interval over the first axis (seeds)."""
    n = values.shape[0]
    mean = values.mean(axis=0)
    if n < 2:
        return {"mean": mean.round(4).tolist(), "low": mean.round(4).tolist(), "high": mean.round(4).tolist()}
    t = T_975[max(d for d in T_975 if d <= n - 1)]
    half = t * values.std(axis=0, ddof=1) / np.sqrt(n)
    return {"mean": mean.round(4).tolist(), "low": (mean - half).round(4).tolist(), "high": (mean + half).round(4).tolist()}


def recovery(after: list[float], points: list[int], optimum: float, flip_at: int) -> int | None:
    """Episodes after the flip until the score is first within RECOVERY_POINTS of the optimum (None: never)."""
    for point, value in zip(points, after):
        if value >= optimum - RECOVERY_POINTS:
            return point - flip_at
    return None


def summarise(name: str, variant: str, runs: list[dict], args: argparse.Namespace) -> dict:
    """Across seeds: intervals per checkpoint, the optimum, and for the flip its recovery."""
    summary = {"label": LABELS[name], "seconds_per_run": float(np.mean([r["seconds"] for r in runs])),
               "optimum": float(np.mean([r["optimum"] for r in runs])),
               "changes_detected": [r["changes_detected"] for r in runs]}
    if variant != "flip":
        values = np.array([r["curve"] for r in runs])
        return {**summary, "curve": interval(values), "per_seed": values.round(4).tolist()}
    after_points = checkpoints(args.after_flip, args.flip_every, args.flip_at)
    after = np.array([r["after"] for r in runs])
    recovered = [recovery(r["after"], after_points, r["optimum"], args.flip_at) for r in runs]
    at = after_points.index(min(after_points, key=lambda p: abs(p - args.flip_at - RECOVERY_EPISODES)))
    return {**summary, "before": interval(np.array([r["before"] for r in runs])), "after": interval(after),
            "per_seed_after": after.round(4).tolist(), "recovery_episodes": recovered,
            "recovered_within_30": int(sum(r is not None and r <= RECOVERY_EPISODES for r in recovered)),
            "at_30": interval(after[:, at])}


def plot(result: dict, variant: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = result["variants"][variant]
    figure, axes = plt.subplots(figsize=(10.5, 4.5))
    for name, summary in data["policies"].items():
        if variant == "flip":
            episodes = data["before_episodes"] + data["after_episodes"]
            series = {key: summary["before"][key] + summary["after"][key] for key in ("mean", "low", "high")}
        else:
            episodes, series = data["episodes"], summary["curve"]
        style = "--" if name in BASELINES else ":" if name in BEFORE else "-." if name in TOLD else "-"
        axes.plot(episodes, series["mean"], style, label=summary["label"], linewidth=2)
        axes.fill_between(episodes, series["low"], series["high"], alpha=0.15)
    optimum = next(iter(data["policies"].values()))["optimum"]
    axes.axhline(optimum, color="grey", linestyle=":", linewidth=1, label="best K cases")
    if variant == "flip":
        axes.axvline(result["flip_at"], color="black", linewidth=1)
        axes.axvspan(result["flip_at"], result["flip_at"] + RECOVERY_EPISODES, color="grey", alpha=0.1,
                     label=f"{RECOVERY_EPISODES} episodes after the flip")
    titles = {"heldout": "new tasks of the trained families", "transfer": "families never seen in training",
              "flip": "usefulness changes at the line (before: all families, after: the flipped ones)"}
    axes.set_xlabel("online learning episodes")
    axes.set_ylabel("expected success")
    axes.set_ylim(0, 1)
    axes.set_title(f"{titles[variant]}\n({result['seeds']} seeds, mean and 95 % CI)", fontsize=10)
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7)
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def table(result: dict, variant: str) -> str:
    data = result["variants"][variant]
    cell: Callable[[dict, int], str] = lambda s, i: f"{s['mean'][i]:.3f} [{s['low'][i]:.2f}, {s['high'][i]:.2f}]"
    lines = [f"== {variant} =="]
    if variant == "flip":
        after = data["after_episodes"]
        shown = sorted({0, len(after) - 1} | {after.index(p) for p in after if p - result["flip_at"] in (10, 30, 60)})
        header = f"{'policy':<46}{'before flip':>22}" + "".join(f"{'+' + str(after[i] - result['flip_at']):>22}" for i in shown)
        lines += [header + f"{'within 30':>11}", "-" * (len(header) + 11)]
        for summary in data["policies"].values():
            cells = "".join(f"{cell(summary['after'], i):>22}" for i in shown)
            lines.append(f"{summary['label']:<46}{cell(summary['before'], -1):>22}{cells}"
                         f"{summary['recovered_within_30']:>6}/{result['seeds']}")
    else:
        episodes = data["episodes"]
        shown = sorted({0, len(episodes) // 4, len(episodes) // 2, len(episodes) - 1})
        header = f"{'policy':<46}" + "".join(f"{'ep ' + str(episodes[i]):>22}" for i in shown)
        lines += [header + f"{'s/run':>7}", "-" * (len(header) + 7)]
        for summary in data["policies"].values():
            cells = "".join(f"{cell(summary['curve'], i):>22}" for i in shown)
            lines.append(f"{summary['label']:<46}{cells}{summary['seconds_per_run']:>7.1f}")
    lines.append(f"{'best K cases':<46}{next(iter(data['policies'].values()))['optimum']:>22.3f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="independent runs per policy (env, init, exploration)")
    parser.add_argument("--episodes", type=int, default=400, help="online learning episodes (heldout, transfer)")
    parser.add_argument("--every", type=int, default=50, help="score every this many episodes")
    parser.add_argument("--flip-at", type=int, default=300, help="flip variant: episodes before usefulness changes")
    parser.add_argument("--after-flip", type=int, default=150, help="flip variant: episodes after the change")
    parser.add_argument("--flip-every", type=int, default=5, help="flip variant: score every this many episodes after it")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, of {', '.join(VARIANTS)}")
    parser.add_argument("--policies", default=",".join(LABELS), help=f"comma-separated, of {', '.join(LABELS)}")
    parser.add_argument("--out", type=Path, default=Path("runs/policy_curve"), help="folder for curve.json and the PNGs")
    parser.add_argument("--images", type=Path, default=None, help="also copy the PNGs here (docs/images for the README)")
    args = parser.parse_args(argv)

    result = {"seeds": args.seeds, "flip_at": args.flip_at, "metric": "expected success (mean chance of success of the shown sets)",
              "interval": "95% t-interval over seeds", "variants": {}}
    with tempfile.TemporaryDirectory(prefix="policy-curve-") as workdir:
        for variant in args.variants.split(","):
            data = {"env": asdict(ENV_CONFIGS[variant]), "policies": {}}
            if variant == "flip":
                data["before_episodes"] = checkpoints(args.flip_at, args.every)
                data["after_episodes"] = checkpoints(args.after_flip, args.flip_every, args.flip_at)
            else:
                data["episodes"] = checkpoints(args.episodes, args.every)
            result["variants"][variant] = data
            for name in args.policies.split(","):
                if name in TOLD and variant != "flip":
                    continue  # without a change there is nothing to be told: it would be `neural` again
                runs = [run_one(name, variant, seed, args, Path(workdir)) for seed in range(args.seeds)]
                data["policies"][name] = summarise(name, variant, runs, args)
                print(f"{variant} / {name}: done ({data['policies'][name]['seconds_per_run']:.1f} s per run)", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "curve.json").write_text(json.dumps(result, indent=2))
    for variant in result["variants"]:
        path = args.out / f"policy_{variant}.png"
        plot(result, variant, path)
        if args.images is not None:
            args.images.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, args.images / path.name)
        print(table(result, variant) + "\n")
    print(f"wrote {args.out / 'curve.json'} and {', '.join(f'policy_{v}.png' for v in result['variants'])}")
    return result


if __name__ == "__main__":
    main()
