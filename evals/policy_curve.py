"""Success rate against online episodes for each case-selection policy, in the controlled env.

The env (`envs/case_usefulness.py`) makes the most similar cases harmful and less similar ones
helpful. Each policy learns online on the training tasks (select with exploration, reward,
record, update) and is evaluated every few episodes on held-out tasks of the same families
(no exploration, no learning). Several seeds give the spread (mean +- std across seeds).

    python -m evals.policy_curve                                 # 5 seeds x 400 episodes
    python -m evals.policy_curve --seeds 2 --episodes 100 --out runs/policy_curve_smoke

Writes `curve.json` and `curve.png` under --out and prints a table.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from envs.case_usefulness import CaseUsefulnessEnv, UsefulnessEnvConfig, evaluate, train_online
from policies import make_policy

POLICY_LABELS = {
    "similarity": "similarity (top-K cosine)",
    "neural": "neural soft-Q, set-model credit",
    "neural-copy": "neural soft-Q, copy-the-reward credit",
    "episodic": "episodic control (kernel)",
}


def checkpoints(episodes: int, every: int) -> list[int]:
    """Episode counts at which the policy is evaluated: 0, every, 2*every, ..., episodes."""
    points = list(range(0, episodes + 1, every))
    return points if points[-1] == episodes else points + [episodes]


def run_one(name: str, seed: int, episodes: list[int], repeats: int, workdir: Path) -> dict:
    """One learning run: held-out success at each checkpoint, and the wall time."""
    env = CaseUsefulnessEnv.create(workdir / f"{name}-{seed}.db", UsefulnessEnvConfig(seed=seed))
    config = {} if name == "similarity" else {"seed": seed}
    policy = make_policy(name, bank=env.bank, **config)
    train_rng = np.random.default_rng([seed, 0])
    observed, expected, done, started = [], [], 0, time.perf_counter()
    for target in episodes:
        train_online(policy, env, target - done, train_rng)
        done = target
        # The same evaluation noise at every checkpoint and for every policy.
        result = evaluate(policy, env, env.heldout_tasks, np.random.default_rng([seed, 1]), repeats=repeats)
        observed.append(result["success_rate"])
        expected.append(result["expected_success"])
    ceiling = float(np.mean([env.best_success_probability(t, policy.config.k) for t in env.heldout_tasks]))
    env.bank.close()
    return {"success_rate": observed, "expected_success": expected, "ceiling": ceiling,
            "seconds": time.perf_counter() - started}


def summarise(runs: list[dict], key: str) -> dict:
    values = np.array([run[key] for run in runs])
    return {"mean": values.mean(axis=0).round(4).tolist(), "std": values.std(axis=0).round(4).tolist(),
            "per_seed": values.round(4).tolist()}


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    episodes = result["episodes"]
    figure, axes = plt.subplots(figsize=(7.5, 4.5))
    for name, data in result["policies"].items():
        mean, std = np.array(data["success_rate"]["mean"]), np.array(data["success_rate"]["std"])
        axes.plot(episodes, mean, label=POLICY_LABELS.get(name, name), linewidth=2)
        axes.fill_between(episodes, mean - std, mean + std, alpha=0.2)
    axes.axhline(result["ceiling"], color="grey", linestyle="--", linewidth=1, label="best possible K cases")
    axes.set_xlabel("online learning episodes")
    axes.set_ylabel("success rate on held-out tasks")
    axes.set_ylim(0, 1)
    axes.set_title(f"Case selection where similar cases hurt ({result['seeds']} seeds, mean ± std)")
    axes.legend(loc="center right", fontsize=8)
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def table(result: dict) -> str:
    episodes = result["episodes"]
    shown = sorted({0, episodes[len(episodes) // 4], episodes[len(episodes) // 2], episodes[-1]})
    header = f"{'policy':<40}" + "".join(f"{'ep ' + str(e):>16}" for e in shown) + f"{'s/run':>8}"
    lines = [header, "-" * len(header)]
    for name, data in result["policies"].items():
        cells = "".join(
            f"{data['success_rate']['mean'][episodes.index(e)]:>9.3f} ± {data['success_rate']['std'][episodes.index(e)]:.3f}"
            for e in shown)
        lines.append(f"{POLICY_LABELS.get(name, name):<40}{cells}{data['seconds_per_run']:>8.1f}")
    lines.append(f"{'ceiling (best K cases)':<40}{result['ceiling']:>16.3f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="independent runs per policy (env, init, exploration)")
    parser.add_argument("--episodes", type=int, default=400, help="online learning episodes per run")
    parser.add_argument("--every", type=int, default=50, help="evaluate every this many episodes")
    parser.add_argument("--repeats", type=int, default=4, help="evaluation episodes per held-out task")
    parser.add_argument("--policies", default=",".join(POLICY_LABELS), help="comma-separated names for make_policy")
    parser.add_argument("--out", type=Path, default=Path("runs/policy_curve"), help="folder for curve.json and curve.png")
    args = parser.parse_args(argv)

    episodes = checkpoints(args.episodes, args.every)
    result = {"episodes": episodes, "seeds": args.seeds, "repeats": args.repeats,
              "env": asdict(UsefulnessEnvConfig()), "metric": "success rate on held-out tasks", "policies": {}}
    with tempfile.TemporaryDirectory(prefix="policy-curve-") as workdir:
        for name in args.policies.split(","):
            runs = [run_one(name, seed, episodes, args.repeats, Path(workdir)) for seed in range(args.seeds)]
            result["policies"][name] = {
                "success_rate": summarise(runs, "success_rate"),
                "expected_success": summarise(runs, "expected_success"),
                "seconds_per_run": float(np.mean([run["seconds"] for run in runs])),
            }
            result["ceiling"] = float(np.mean([run["ceiling"] for run in runs]))
            print(f"{name}: done ({result['policies'][name]['seconds_per_run']:.1f} s per run)", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "curve.json").write_text(json.dumps(result, indent=2))
    plot(result, args.out / "curve.png")
    print(table(result))
    print(f"wrote {args.out / 'curve.json'} and {args.out / 'curve.png'}")
    return result


if __name__ == "__main__":
    main()
