"""What an eval run is: one pydantic object that drives the library, `memento eval` and `make run`.

    config = EvalConfig(
        out_dir="runs/fictional",
        tasks=TaskSpec(source="fictional", limit=12, options={"split": "train"}),
        arms=["none", "neural"],
        iterations=3,
    )
    summary = run_eval(config)          # evals.runner

Two protocols:
- `iterated` (the paper's): the same tasks, `iterations` passes, memory carried from pass to pass;
  every episode learns, and accuracy is reported per pass.
- `split`: `iterations` learning passes over `tasks` (the train set), then one scoring pass over
  `test_tasks` with learning off, where retrieved cases whose task text equals the test task
  are reported and, by default, excluded.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from memento.errors import ValidationError

NO_MEMORY = "none"
"""The arm whose agent sees no past cases and writes none."""

ARMS = (NO_MEMORY, "similarity", "neural", "neural-copy", "episodic")
"""Every arm the runner knows: no memory, or a policy name of `policies.make_policy`."""


class TaskSpec(BaseModel):
    """Which tasks to load: a source of `envs.SOURCES` and its loader's options."""

    model_config = ConfigDict(extra="forbid")

    source: str = "fictional"
    """A key of `envs.SOURCES`: fictional, qa, deepresearcher, simpleqa, gaia, hle."""
    path: str | None = None
    """Data file or folder; None is the source's shared-data default (fictional needs none)."""
    limit: int | None = None
    """Keep this many tasks after shuffling with `seed` (all when None)."""
    seed: int = 0
    """Seed of the shuffle that picks the tasks."""
    options: dict[str, Any] = Field(default_factory=dict)
    """More loader options, e.g. {"split": "train", "world_seed": 0} or {"sources": ["nq"]}."""

    @field_validator("source")
    @classmethod
    def _known_source(cls, value: str) -> str:
        from memento.envs import SOURCES

        if value not in SOURCES:
            raise ValueError(f"task source {value!r} is not one of {sorted(SOURCES)}")
        return value


class LLMSpec(BaseModel):
    """Which model answers: a backend name of `memento.llm.load_llm` and its options."""

    model_config = ConfigDict(extra="forbid")

    backend: str = "llamacpp"
    """llamacpp (the embedded SmolLM2), openai, vllm or transformers."""
    options: dict[str, Any] = Field(default_factory=dict)
    """Keyword arguments of the backend's config, e.g. {"n_ctx": 4096} or {"base_url": ...}."""


class JudgeSpec(LLMSpec):
    """The LLM judge that grades answers for PM; its prompt and every verdict are stored."""

    max_tokens: int = 256
    """Cap on the judge's reply."""


class DistillSpec(BaseModel):
    """Distil each memory arm's bank into a LoRA adapter in the background, every N new successes."""

    model_config = ConfigDict(extra="forbid")

    every: int = 50
    """New successful cases in an arm's bank between two distillations."""
    options: dict[str, Any] = Field(default_factory=dict)
    """`memento.distill.DistillConfig` fields, e.g. {"train": {"steps": 40}, "gate": {"max_drop_points": 2}}."""


class EvalConfig(BaseModel):
    """Everything that defines an eval run; its results-relevant part is hashed into the manifest."""

    model_config = ConfigDict(extra="forbid")

    out_dir: Path = Path("runs/eval")
    """The run folder: episodes.jsonl, summary.json, report.md, plots, manifest.json, one bank per arm."""
    protocol: Literal["iterated", "split"] = "iterated"
    """iterated: the same tasks for several passes; split: learn on `tasks`, score on `test_tasks`."""
    tasks: TaskSpec = Field(default_factory=TaskSpec)
    """The task set (iterated) or the train set (split)."""
    test_tasks: TaskSpec | None = None
    """The held-out set of the split protocol (may hold other, out-of-domain sources)."""
    arms: list[str] = Field(default_factory=lambda: [NO_MEMORY, "neural"])
    """Arms run side by side on the same tasks and seeds, each with its own bank."""
    iterations: int = 3
    """Passes over `tasks` with memory carried over."""
    attempts: int = 1
    """Attempts per task and pass; Pass@k is reported for k up to this."""
    seed: int = 0
    """Seeds the policies and the LLM's sampling; the same for every arm."""
    k: int = 4
    """Cases shown per episode (the paper's best is 4)."""
    policy_options: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """Per arm, settings of its policy's config, e.g. {"neural": {"alpha": 0.5}}."""
    llm: LLMSpec = Field(default_factory=LLMSpec)
    """The agent's model."""
    judge: JudgeSpec | None = None
    """Grades answers for PM (judged partial match); None runs only the rule-based scorers."""
    corpus: str | None = None
    """JSONL(.gz) passages for the BM25 search tool. None: the fictional suite writes its own into
    the run folder; other sources have no corpus."""
    tools: list[Literal["search", "python", "read_file"]] | None = None
    """The agent's tools: BM25 search over the corpus, the Python sandbox, the attachment reader.
    None: search when there is a corpus, nothing else."""
    agent_options: dict[str, Any] = Field(default_factory=dict)
    """Settings of the agent's `AgentConfig` (budgets such as max_steps); k and reward_metric come from here."""
    reward_metric: Literal["em", "f1"] = "em"
    """Which rule-based score is the reward the policies learn from."""
    exclude_same_task: bool = True
    """In the split protocol's test pass, drop retrieved cases whose task text equals the test task."""
    concurrency: int = 4
    """Episodes in flight at once (the embedded backend serialises its own calls; a server batches)."""
    store_trace: bool = True
    """Keep each episode's trace (plans, tool calls) in episodes.jsonl."""
    distill: DistillSpec | None = None
    """Distil the memory arms' banks as the run goes (memento.distill.schedule); None: never."""
    bank_url: str | None = None
    """A postgresql:// URL to keep the arms' banks in (arm A in schema `<the URL's schema>_<A>`,
    default schema `memento`); None: a SQLite file per arm in the run folder. No password in it
    (the config is written to manifest.json): give it with PGPASSWORD or ~/.pgpass."""

    @field_validator("bank_url")
    @classmethod
    def _bank_url(cls, url: str | None) -> str | None:
        if url is None:
            return None
        parts = urlsplit(url)
        if parts.scheme not in ("postgresql", "postgres"):
            raise ValueError(f"bank_url {url!r} must be a postgresql:// URL (leave it out for SQLite files in the run folder)")
        if parts.password:
            raise ValueError("bank_url holds a password, which would be written to manifest.json; "
                             "take it out and give it with PGPASSWORD or ~/.pgpass")
        return url

    @field_validator("arms")
    @classmethod
    def _known_arms(cls, arms: list[str]) -> list[str]:
        unknown = [arm for arm in arms if arm not in ARMS]
        if unknown or not arms or len(set(arms)) != len(arms):
            raise ValueError(f"arms {arms} must be distinct names among {list(ARMS)}, at least one")
        return arms

    @model_validator(mode="after")
    def _consistent(self) -> EvalConfig:
        rules = [
            (self.iterations >= 1 and self.attempts >= 1, "iterations and attempts must be >= 1"),
            (self.k >= 1 and self.concurrency >= 1, "k and concurrency must be >= 1"),
            ((self.protocol == "split") == (self.test_tasks is not None),
             "the split protocol needs test_tasks and the iterated one takes none"),
            (set(self.policy_options) <= set(self.arms) - {NO_MEMORY},
             f"policy_options keys {sorted(self.policy_options)} must be policy arms among {self.arms}"),
        ]
        for ok, rule in rules:
            if not ok:
                raise ValueError(rule)
        return self

    def run_identity(self) -> dict[str, Any]:
        """The settings that decide the results (not where they go or how fast they are made)."""
        # Without distillation or a bank URL the fingerprint is what it was before those fields existed,
        # so older runs resume.
        unhashed = ({"out_dir", "concurrency"} | ({"distill"} if self.distill is None else set())
                    | ({"bank_url"} if self.bank_url is None else set()))
        return self.model_dump(mode="json", exclude=unhashed)

    def fingerprint(self) -> str:
        """A short hash of `run_identity`, so a resumed run can check it is the same run."""
        text = json.dumps(self.run_identity(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def load_config(path: str | Path) -> EvalConfig:
    """An EvalConfig from a JSON or YAML file; ValidationError naming the file and the problem."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ValidationError(f"eval config {str(path)!r} does not exist; pass the path of a .json or .yaml file")
    text = path.read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text) if path.suffix in (".yaml", ".yml") else json.loads(text)
        return EvalConfig.model_validate(data)
    except (ValueError, yaml.YAMLError) as error:  # pydantic's ValidationError is a ValueError
        raise ValidationError(f"eval config {str(path)!r} is invalid: {error}") from None


def arm_bank_schema(bank_url: str, arm: str) -> str:
    """The PostgreSQL schema of arm `arm`'s bank under `bank_url`: the URL's schema (default memento), then the arm."""
    base = parse_qs(urlsplit(bank_url).query).get("schema", ["memento"])[0]
    return f"{base}_{arm}"
