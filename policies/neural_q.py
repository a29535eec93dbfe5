"""A neural soft-Q case-selection policy that learns online from episode rewards.

The paper's parametric memory (AgentFly/Memento, arXiv 2508.16153, section 3): a network
Q(s, c) scores each candidate case c for the task state s, and the case-selection policy is
mu(c|s) proportional to exp(Q(s, c) / alpha).

Selection. The FAISS top-N (default 32) cases by cosine similarity are the candidates; the
network re-scores them from [state embedding, case embedding, state * case, case features]
where the features are the cosine similarity, the case's stored reward, its age, how often this
policy has shown it and the smoothed mean reward it was shown with. While learning
(`explore=True`) K cases are drawn without replacement from softmax(Q / alpha) over the
candidates; when evaluating the top K by Q are taken.

Credit assignment (the default, `credit="set"`). An episode shows K cases together and earns
one reward, so the reward says something about the set, not about each case. Copying it onto
each shown case (what the authors' released classifier does) makes a useless case that is shown
next to a useful one look useful, and a useful one shown next to a harmful one look harmful.
Instead the network's output is a per-case contribution q(s, c) in logit space, and the episode
is modelled as

    P(success | s, C) = sigmoid( b(s) + sum_{c in C} q(s, c) )

with b(s) a learned per-state baseline (how hard the task is with no memory). It is trained
with binary cross-entropy on episode outcomes, the paper's loss for single-step binary rewards.
Because exploration shows each case in many different subsets, a case's contribution is
identified across episodes: it is what is left of the outcomes once the other shown cases'
contributions are accounted for (a logistic regression over case indicators, generalised
across states by the network). The per-case score used for selection is
Q(s, c) = b(s) + q(s, c), the log-odds of success if c alone were shown. Its assumption is
that contributions add up in logit space: interactions between cases (two that only help
together) are not modelled.

The baseline `credit="copy"` is kept for comparison (`python -m memento.evals.policy_curve`): each
shown case gets the episode reward as its own cross-entropy target for sigmoid(b(s) + q(s, c)).

Evidence, transfer and change. What the network says about a case it has little evidence on
is a guess, and on a family of tasks it never trained on an arbitrary one. So the score used to
select, Q'(s, c) = w Q(s, c) + (1 - w) prior(s, c), backs off to a similarity prior with
w = n / (n + prior_shows), n the times c was shown for tasks like s (`backed_off`): with no
evidence the policy ranks as similarity does, and cannot fall below it. Four mechanisms make
it follow a world that changes (a tool or site changes, an answer goes stale):

- a per-case residual added to Q, one SGD step per recorded outcome (`residual_lr`), which
  follows outcomes at once and shrinks back as the network catches up;
- recency-aware replay: half of each minibatch comes from the last `recent_window` steps;
- change detection: a Bernoulli CUSUM per case, and one per region of tasks, of outcomes
  against their recent success rate (`policies/change_detection.py`). Past `suspect_threshold` (a couple of unexpected
  failures) a change is only suspected, and tested: the next `test_episodes` learning
  episodes on tasks like that one show similarity's picks instead. If they beat the suspected
  cases' recent rate by `test_margin`, or reach 90 %, the change is confirmed; past
  `change_threshold` it is confirmed outright. A confirmed change forgets the steps and
  statistics of every candidate of the task, which sends their scores back to the similarity
  prior until fresh evidence comes in, and marks what the network says about them stale until
  `recent_window` more steps have retrained it and the case has been shown `STALE_SHOWS` times
  since (until then a forgotten case's learned score is the prior plus its residual, fitted to
  fresh outcomes only: with a fixed number of steps alone, the network's old view of a case the
  prior seldom picks came back and the policy picked it again); a false alarm costs the test episodes and nothing else,
  which is what lets the suspicion level be low. What is forgotten is what was recorded before
  the change began (the CUSUM's estimate of when): the failures that revealed it and the
  episodes that tested it are evidence of the world as it is now, and stay;
- probing the prior (`prior_duel`, `policies/prior_duel.py`): where the policy had learned
  little, a change leaves its exploring outcomes about as poor as before and no sum rises,
  though the prior's picks may now be the best. Per region, discounted Thompson sampling
  between the policy's picks and the prior's decides which a learning episode shows, and
  selection without exploration follows the prior where its recent record is `prior_confidence`
  (95 %) sure to be better; the cost is the probes' share of learning episodes, and at a lower
  `prior_confidence` switches that a lucky run of probes causes where nothing changed.

How far this gets is measured by the flip variant of `python -m memento.evals.policy_curve` (see the
README).

Multi-step episodes. For a step with `done=False` the target is the soft Bellman backup
r + gamma * V(s') with V(s') = sigmoid(alpha * log mean_{c'} exp(Q'(s', c') / alpha)), where Q'
is a Polyak-averaged target network and c' ranges over the next state's candidates. This is the
paper's r + gamma * alpha * logsumexp(Q(s', .) / alpha) with two changes, both because Q lives in
logit space and the target must stay a probability for cross-entropy: the soft maximum is taken
under a uniform prior over the N candidates (the mean, not the sum, so it stays between the
smallest and the largest Q), and it is mapped back through the sigmoid; the sum is clipped to
[0, 1]. The next state's value is that of its soft-best single case, which understates the value
of showing K cases together. Rewards must lie in [0, 1] (0 failure, 1 success, or a graded
score).

Cost. `update()` runs `gradient_steps` Adam steps on minibatches drawn from the replay buffer
(`policies/replay.py`, kept in the bank's SQLite so learning survives restarts); call it after
every episode. See `python -m memento.evals.bench_policy` for the measured cost.

    policy = NeuralQPolicy(bank)
    state = TaskState.from_task(bank, question)
    shown = policy.select(state, explore=True)
    policy.record(state, [s.case.id for s in shown], reward)
    policy.update()
"""

from __future__ import annotations

import copy
import math
import os
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from memento.case import Case
from memento.errors import PolicyError, ValidationError
from memento.threads import torch_threads
from memento.policies.base import (Candidates, CaseSelectionPolicy, Exclude, LearnedConfig, Selection, TaskState, check_config,
                           sample_without_replacement, top_k)
from memento.policies.change_detection import ChangeMonitor
from memento.policies.prior_duel import CONFIDENCE as PRIOR_CONFIDENCE
from memento.policies.replay import ReplayBuffer, Transition

FEATURES = ("cosine", "stored_reward", "log_age_days", "log_times_shown", "mean_reward_shown")
"""The per-case features the network sees next to the embeddings."""

STALE_SHOWS = 32
"""Fresh shows of a case forgotten after a change before the network's score of it is used again."""

USEFULNESS_STATES = 16
"""How many recorded task states a case's usefulness is averaged over."""


@dataclass(frozen=True)
class NeuralQConfig(LearnedConfig):
    """Hyperparameters of `NeuralQPolicy` (with the shared ones of `LearnedConfig`: candidates, seed, alpha, ...)."""

    name: str = "neural"
    """Key of this policy's rows in the bank's `policy_` tables (two live policies on one bank need two names)."""
    credit: str = "set"
    """'set': additive set model over the shown cases; 'copy': each shown case gets the episode reward."""
    hidden: int = 64
    """Width of the network's hidden layers."""
    lr: float = 3e-3
    """Adam learning rate."""
    weight_decay: float = 1e-4
    """AdamW weight decay."""
    batch_size: int = 32
    """Recorded steps per gradient step."""
    gradient_steps: int = 2
    """Gradient steps per `update()` call (one call per episode)."""
    min_replay: int = 8
    """Recorded steps needed before `update()` starts learning."""
    replay_capacity: int = 10_000
    """Recorded steps kept; the oldest go first."""
    target_tau: float = 0.05
    """Polyak rate of the target network used for multi-step targets."""
    prior_shows: float = 2.0
    """Back-off: a case shown this many times weighs its learned score and the similarity prior equally; 0 = no prior."""
    evidence_similarity: float = 0.4
    """Evidence about a case counts only for tasks at least this cosine-similar to the tasks it was shown for."""
    prior_scale: float = 4.0
    """The similarity prior's slope: logits per unit of cosine above the candidates' mean."""
    recent_fraction: float = 0.5
    """Share of each minibatch drawn from the last `recent_window` recorded steps (the rest from all)."""
    recent_window: int = 64
    """How many of the latest recorded steps count as recent."""
    residual_lr: float = 0.3
    """Step of the per-case residual added to Q: it follows outcomes at once while the network catches up; 0 = off."""
    prior_duel: bool = True
    """Probe the similarity prior's picks in learning episodes, and follow them where they lately did better
    (`PriorDuel`); part of change detection, so off when change_threshold is 0."""
    prior_confidence: float = PRIOR_CONFIDENCE
    """How sure a region's record must make the duel that the prior's picks do better before selection follows
    them, in [0.5, 1) (default 0.95): lower follows sooner after a change and is fooled more often where nothing changed."""
    torch_threads: int = 1
    """Torch threads while scoring and learning: the network is tiny, so more threads only add overhead."""

    def __post_init__(self) -> None:
        super().__post_init__()
        rules = [
            (self.credit in ("set", "copy"), "credit must be 'set' or 'copy'"),
            (self.hidden >= 1 and self.batch_size >= 1 and self.gradient_steps >= 0, "hidden, batch_size must be >= 1, gradient_steps >= 0"),
            (isinstance(self.torch_threads, int) and self.torch_threads >= 1, "torch_threads must be a positive integer"),
            (self.lr > 0 and self.weight_decay >= 0, "lr must be positive and weight_decay non-negative"),
            (self.min_replay >= 1 and self.replay_capacity >= self.min_replay, "need 1 <= min_replay <= replay_capacity"),
            (0 < self.target_tau <= 1, "need 0 < target_tau <= 1"),
            (self.prior_shows >= 0 and self.prior_scale >= 0, "prior_shows and prior_scale must be non-negative"),
            (-1 <= self.evidence_similarity <= 1, "evidence_similarity must be a cosine in [-1, 1]"),
            (0 <= self.recent_fraction <= 1 and self.recent_window >= 1, "need 0 <= recent_fraction <= 1 and recent_window >= 1"),
            (self.residual_lr >= 0, "residual_lr must be non-negative"),
            (0.5 <= self.prior_confidence < 1, "prior_confidence must be in [0.5, 1): below 0.5 it would follow a prior "
                                               "that is likelier worse, and 1 never follows it (prior_duel=False does that)"),
        ]
        check_config(self, rules)


class CaseScorer(nn.Module):
    """q(s, c) for many candidates at once, and the per-state baseline b(s)."""

    def __init__(self, dim: int, n_features: int, hidden: int):
        super().__init__()
        self.pair = nn.Sequential(
            nn.Linear(3 * dim + n_features, hidden), nn.ReLU(),
            nn.Linear(hidden, hidden), nn.ReLU(),
            nn.Linear(hidden, 1),
        )
        self.baseline = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, states: torch.Tensor, cases: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """(B, dim), (B, M, dim), (B, M, F) -> contributions q, (B, M).

        The first layer sees [s, c, s * c, features]; it is applied block by block, so the state's
        block runs once per state rather than once per candidate and nothing is concatenated.
        """
        first = self.pair[0]
        dim = states.shape[-1]
        w_state, w_case, w_product, w_features = first.weight.split([dim, dim, dim, features.shape[-1]], dim=1)
        hidden = (F.linear(states, w_state, first.bias)[:, None, :] + F.linear(cases, w_case)
                  + F.linear(states[:, None, :] * cases, w_product) + F.linear(features, w_features))
        return self.pair[1:](hidden).squeeze(-1)

    def base(self, states: torch.Tensor) -> torch.Tensor:
        """(B, dim) -> b(s), (B,)."""
        return self.baseline(states).squeeze(-1)


class NeuralQPolicy(CaseSelectionPolicy):
    """Soft-Q case selection: a small MLP re-scores the FAISS top-N and learns from rewards."""

    kind = "neural"
    config_class = NeuralQConfig
    storage = "policy_replay"

    def __init__(self, bank: Any = None, config: NeuralQConfig | None = None, *, share: bool = False):
        self.net: CaseScorer | None = None
        self.replay: ReplayBuffer | None = None
        self.residual: dict[str, float] = {}
        """case id -> fast per-case correction of Q in logits, fitted online to outcomes (saved in checkpoints, not in the bank)."""
        self.changes = 0
        """Changes detected since the policy was created."""
        self.recorded = 0
        """Steps recorded since the policy was created (in memory, like the change detector's sums)."""
        self.stale_until: dict[str, int] = {}
        """case id -> `recorded` count until which the network's score of a case forgotten after a change is not used."""
        super().__init__(bank, config, share=share)
        self.monitor = ChangeMonitor(self.config.change_threshold, self.config.change_drop, self.config.suspect_threshold,
                                     self.config.test_episodes, self.config.test_margin, self.config.evidence_similarity,
                                     duel=self.config.prior_duel and self.config.change_threshold > 0,
                                     seed=self.config.seed, confidence=self.config.prior_confidence)
        self.rng = np.random.default_rng(self.config.seed)

    def _on_bind(self, bank: Any) -> None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.config.seed)
            self.net = CaseScorer(bank.dim, len(FEATURES), self.config.hidden)
        self.target = copy.deepcopy(self.net).requires_grad_(False)
        # The fused kernel updates every parameter in one call: per-tensor Adam costs about as much as the step itself.
        self.optimizer = torch.optim.AdamW(self.net.parameters(), lr=self.config.lr,
                                           weight_decay=self.config.weight_decay, fused=True)
        self._online_parameters = list(self.net.parameters())
        self._target_parameters = list(self.target.parameters())
        self.replay = ReplayBuffer(bank, self.config.name, len(FEATURES), self.config.replay_capacity)

    def has_recorded(self, episode_id: str) -> bool:
        """Whether the replay buffer holds a step of `episode_id` (the row is written in `record`'s transaction)."""
        self._bank()
        return any(step.episode_id == episode_id for step in self.replay.transitions)

    # -- selection --------------------------------------------------------------------------------

    def select(self, state: TaskState, *, k: int | None = None, explore: bool = False,
               namespace: tuple[str, ...] | None = None, exclude: Exclude = None) -> list[Selection]:
        k = self._check_select(state, k, explore)
        candidates = self._candidates(state, max(self.config.candidates, k + 1), namespace, exclude)
        if not candidates:
            return []
        features = self.features(candidates.cases, candidates.similarities)
        scores = self.score(state.embedding, candidates.vectors, features)
        scores = self.backed_off(scores, candidates, state.embedding)
        if explore and self.monitor.testing(state.embedding, state.episode_id):
            # Test a suspected change: show what the similarity prior would, and compare.
            chosen = top_k(candidates.similarities, k)
        elif explore:
            chosen = sample_without_replacement(scores / self.config.alpha, k, self.rng)
        elif self.monitor.prefers_prior(state.embedding):
            chosen = top_k(candidates.similarities, k)  # lately the prior's picks did better here
        else:
            chosen = top_k(scores, k)
        return [Selection(case=candidates.cases[i], score=float(scores[i]),
                          similarity=float(candidates.similarities[i])) for i in chosen]

    def score(self, state: np.ndarray, vectors: np.ndarray, features: np.ndarray) -> np.ndarray:
        """Q(s, c) = b(s) + q(s, c) for each candidate row, as float32 numpy."""
        with torch.no_grad(), torch_threads(self.config.torch_threads):
            s = torch.from_numpy(np.ascontiguousarray(state, dtype=np.float32))[None]
            q = self.net(s, torch.from_numpy(vectors)[None], torch.from_numpy(features)[None])[0]
            return (q + self.net.base(s)).numpy()

    def backed_off(self, scores: np.ndarray, candidates: Candidates, state: np.ndarray) -> np.ndarray:
        """Blend each learned Q(s, c) with the similarity prior by how much evidence there is about c near s.

        Q'(s, c) = w Q(s, c) + (1 - w) (mean Q + prior_scale (cos(s, c) - mean cos)),
        w = n / (n + prior_shows), n = times c was shown since the policy last forgot it, counted
        only if s is at least `evidence_similarity`-similar to the mean of the tasks c was shown
        for (else n = 0). With no evidence the ranking is similarity's, so what the network makes
        of cases it never saw, or saw only for unrelated tasks (a family it never trained on,
        cases it forgot after a change), cannot push the policy below similarity; with evidence
        the learned score takes over.
        """
        residuals = np.array([self.residual.get(c.id, 0.0) for c in candidates.cases], dtype=np.float32)
        if self.config.prior_shows == 0:
            return scores + residuals
        shown = np.zeros(len(scores), dtype=np.float32)
        for i, case in enumerate(candidates.cases):
            where = self.replay.shown_where(case.id)
            if where is not None and float(where @ state) >= self.config.evidence_similarity:
                shown[i] = self.replay.stats.get(case.id, (0, 0.0))[0]
        weight = shown / (shown + self.config.prior_shows)
        # The baseline b(s) is the same for every candidate; the mean learned score stands in for it.
        prior = float(scores.mean()) + self.config.prior_scale * (candidates.similarities - candidates.similarities.mean())
        learned = scores.copy()
        stale = np.array([self._stale(c.id) for c in candidates.cases])
        # What the network learned about a case before a change is stale until fresh steps retrain it:
        # until then the case's learned score is the prior plus its residual, fitted to fresh outcomes only.
        learned[stale] = prior[stale]
        return (weight * (learned + residuals) + (1 - weight) * prior).astype(np.float32)

    def _stale(self, case_id: str) -> bool:
        """Whether what the network says of a case forgotten after a change is still not to be used.

        Until `recent_window` more steps have passed and the case itself has been shown
        `STALE_SHOWS` times since: a case the prior seldom picks (the one whose answers went
        stale) gets few fresh steps, so the network's old view of it would come back once a fixed
        number of steps had passed, and the policy would pick it again.
        """
        until = self.stale_until.get(case_id)
        return until is not None and (until > self.recorded or self.replay.stats.get(case_id, (0, 0.0))[0] < STALE_SHOWS)

    def features(self, cases: Sequence[Case], similarities: np.ndarray) -> np.ndarray:
        """The (len(cases), len(FEATURES)) feature rows, in the order of `FEATURES`."""
        now = datetime.now(timezone.utc)
        rows = np.empty((len(cases), len(FEATURES)), dtype=np.float32)
        for i, case in enumerate(cases):
            shown, total = self.replay.stats.get(case.id, (0, 0.0))
            # Whole hours: finer differences carry no signal and would make runs irreproducible.
            age_days = max(0, int((now - case.created_at).total_seconds() // 3600)) / 24
            rows[i] = (similarities[i], case.reward, math.log1p(age_days), math.log1p(shown), (total + 1) / (shown + 2))
        return rows

    # -- recording --------------------------------------------------------------------------------

    def record(self, state: TaskState, selected_ids: Sequence[str], reward: float, *,
               next_state: TaskState | None = None, done: bool = True,
               namespace: tuple[str, ...] | None = None) -> None:
        """Store the step in the replay buffer; `namespace` limits the next state's candidates."""
        cases = self._check_outcome(state, selected_ids, reward, next_state, done)
        reward = float(reward)
        if not 0.0 <= reward <= 1.0:
            raise ValidationError(
                f"reward {reward!r} is outside [0, 1]; NeuralQPolicy models the probability of success, "
                f"so pass 0 for a failure, 1 for a success, or a score in between"
            )
        bank = self.bank
        vectors = bank.vectors([c.id for c in cases]) if cases else np.zeros((0, bank.dim), dtype=np.float32)
        vectors = np.asarray(vectors, dtype=np.float32)
        transition = Transition(
            state=state.embedding, case_ids=tuple(c.id for c in cases), case_vectors=vectors,
            case_features=self.features(cases, vectors @ state.embedding), reward=reward, done=bool(done),
            episode_id=state.episode_id,
        )
        if not done:
            following = self._candidates(next_state, self.config.candidates, namespace)
            transition = replace(
                transition, next_state=next_state.embedding, next_ids=tuple(c.id for c in following.cases),
                next_vectors=following.vectors, next_features=self.features(following.cases, following.similarities),
            )
        # The change monitor compares this outcome with the shown cases' record before it.
        before = {c: self.replay.stats[c] for c in transition.case_ids if c in self.replay.stats}
        self.replay.add(transition)
        transition = self.replay.transitions[-1]  # with its row id, the monitor's clock
        if done and cases:
            if self.config.residual_lr > 0:
                self._follow_outcome(transition)
            if self.config.change_threshold > 0:
                self._watch_for_change(state, transition, namespace, before)
        self.recorded += 1

    def absorb(self, transitions: Sequence[Transition]) -> None:
        """Follow steps another process recorded (already in the replay): residuals and change detection.

        A distributed run's learner (`evals/distributed.py`) calls this for the steps its workers
        wrote, so its checkpoint carries the fast per-case parts that `record` would have updated.
        """
        for transition in transitions:
            if not (transition.done and transition.case_ids):
                continue
            if self.config.residual_lr > 0:
                self._follow_outcome(transition)
            if self.config.change_threshold > 0:
                state = TaskState(task=f"episode {transition.episode_id}", embedding=transition.state,
                                  episode_id=transition.episode_id)
                self._watch_for_change(state, transition, None, self.replay.stats)
            self.recorded += 1

    def _follow_outcome(self, transition: Transition, only: set[str] | None = None) -> None:
        """One SGD step of the per-case residuals on this outcome's cross-entropy (of the cases in `only`, if given).

        The network learns slowly from minibatches over the whole buffer; the residual moves each
        shown case's score by residual_lr * (r - p) at once, where p is the predicted chance of
        success with the residuals included, so it shrinks back as the network catches up.
        """
        with torch.no_grad(), torch_threads(self.config.torch_threads):
            states, cases, features, _ = _padded([transition], [transition.case_vectors], [transition.case_features])
            q = self.net(states, cases, features)[0].numpy().astype(np.float64)
            baseline = float(self.net.base(states)[0])
        residuals = np.array([self.residual.get(c, 0.0) for c in transition.case_ids])
        # A stale case's network score is not what select uses (`backed_off`): count it as no effect.
        q[[self._stale(c) for c in transition.case_ids]] = 0.0
        if self.config.credit == "set":
            # The set model: one prediction for the shown set, its error shared by every shown case.
            predicted = np.full(len(q), _sigmoid(baseline + float((q + residuals).sum())))
        else:
            predicted = 1.0 / (1.0 + np.exp(-(baseline + q + residuals)))
        for case_id, value, p in zip(transition.case_ids, residuals, predicted):
            if only is None or case_id in only:
                self.residual[case_id] = float(np.clip(value + self.config.residual_lr * (transition.reward - p), -4.0, 4.0))

    def keep_watch(self, previous: CaseSelectionPolicy) -> None:
        """The change monitor (its sums, suspects and prior duel), the stale marks and the counters of `previous`."""
        self.monitor, self.stale_until = previous.monitor, previous.stale_until
        self.recorded, self.changes = previous.recorded, previous.changes

    def _watch_for_change(self, state: TaskState, transition: Transition, namespace: tuple[str, ...] | None,
                          before: dict[str, tuple[int, float]]) -> None:
        """Feed the outcome to the change monitor; on a confirmed change, forget what is known around `state`.

        Every candidate of the state forgets the steps recorded before the change began (the
        CUSUM's estimate, `Change.since`), its statistics and its residual: its score falls back to
        the similarity prior (`backed_off`) plus what the steps since the change say, and the
        network relearns it from fresh, recent-weighted minibatches. The steps since the change
        (the failures that revealed it, the episodes that tested it) are kept: they are the only
        evidence there is of the world as it is now.
        """
        change = self.monitor.observe(state.embedding, state.episode_id, transition.case_ids, transition.reward,
                                      before, clock=transition.row_id)
        if change is None:
            return
        around = self._candidates(state, self.config.candidates, namespace)
        since = transition.row_id if change.since is None else change.since
        self.forget({c.id for c in around.cases} | change.case_ids, since=since)
        self.changes += 1

    def forget(self, case_ids: set[str] | Sequence[str], *, since: int | None = None) -> None:
        """Drop what is known about these cases (steps, statistics, residuals), as after a confirmed change.

        Their scores fall back to the similarity prior, and what the network says of them is stale
        until `recent_window` more steps have passed and each has `STALE_SHOWS` fresh shows (`_stale`).
        With `since` (a replay row id) the steps from that one on are kept, and the residuals are
        refitted to them alone. The change detector calls this with the change's estimated start;
        so can a caller that knows a change happened (a tool was replaced, a site moved), without.
        """
        forget = set(case_ids)
        self.replay.forget(forget, before=since)
        self.monitor.reset(forget)
        for case_id in forget:
            self.residual.pop(case_id, None)
            self.stale_until[case_id] = self.recorded + self.config.recent_window
        if since is not None and self.config.residual_lr > 0:
            for transition in self.replay.transitions:
                if transition.row_id >= since and transition.done and forget.intersection(transition.case_ids):
                    self._follow_outcome(transition, only=forget)

    # -- learning ---------------------------------------------------------------------------------

    def update(self) -> dict[str, float]:
        """A few gradient steps on minibatches from the replay buffer; nothing is written to the bank."""
        self._bank()
        metrics = {"charts/replay_size": float(len(self.replay))}
        if len(self.replay) < self.config.min_replay or self.config.gradient_steps == 0:
            return metrics
        losses = []
        with torch_threads(self.config.torch_threads):
            for _ in range(self.config.gradient_steps):
                batch = self.replay.sample(self.config.batch_size, self.rng, window=self.config.recent_window,
                                           recent=round(self.config.recent_fraction * self.config.batch_size))
                losses.append(self.gradient_step(batch))
        return {**metrics, "losses/q_loss": float(np.mean(losses)), "charts/step": float(self.step),
                "charts/changes_detected": float(self.changes)}

    def gradient_step(self, batch: Sequence[Transition]) -> float:
        """One Adam step on `batch`; PolicyError (and no step) if the loss is not finite."""
        loss = self.loss(batch)
        if not torch.isfinite(loss):
            raise PolicyError(f"the {self.config.name!r} policy's loss is {loss.item()}; the step was not applied. "
                              f"Lower lr (now {self.config.lr}) or check the recorded rewards")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self._track_target()
        self.step += 1
        return loss.item()

    def loss(self, batch: Sequence[Transition]) -> torch.Tensor:
        """Cross-entropy of the batch's outcomes under the set model (or the copy baseline)."""
        states, cases, features, shown = _padded(batch, [t.case_vectors for t in batch], [t.case_features for t in batch])
        rewards = torch.tensor([t.reward for t in batch], dtype=torch.float32)
        targets = rewards + self.config.gamma * self._next_values(batch)
        targets = targets.clamp(0.0, 1.0)
        q = self.net(states, cases, features)
        baseline = self.net.base(states)
        if self.config.credit == "set":
            logits = baseline + (q * shown).sum(dim=1)
            return F.binary_cross_entropy_with_logits(logits, targets)
        per_case = F.binary_cross_entropy_with_logits(baseline[:, None] + q, targets[:, None].expand_as(q), reduction="none")
        # An episode shown no case still teaches the baseline: its logit is b(s) alone.
        empty = (shown.sum(dim=1) == 0).float()
        no_memory = F.binary_cross_entropy_with_logits(baseline, targets, reduction="none") * empty
        return ((per_case * shown).sum() + no_memory.sum()) / (shown.sum() + empty.sum())

    def _next_values(self, batch: Sequence[Transition]) -> torch.Tensor:
        """V(s') for non-terminal steps (0 for terminal ones), from the target network."""
        values = torch.zeros(len(batch))
        open_steps = [i for i, t in enumerate(batch) if not t.done]
        if not open_steps:
            return values
        following = [batch[i] for i in open_steps]
        dim = following[0].next_state.shape[0]
        states, cases, features, valid = _padded(
            following, [t.next_vectors for t in following], [t.next_features for t in following],
            states=[t.next_state for t in following], dim=dim,
        )
        with torch.no_grad():
            q = self.target(states, cases, features) + self.target.base(states)[:, None]
            alpha = self.config.alpha
            q = q.masked_fill(valid == 0, float("-inf"))
            count = valid.sum(dim=1)
            soft = alpha * (torch.logsumexp(q / alpha, dim=1) - torch.log(count.clamp(min=1)))
            # A next state with no candidates runs without memory: its value is the baseline's.
            soft = torch.where(count > 0, soft, self.target.base(states))
            values[open_steps] = torch.sigmoid(soft)
        return values

    def _track_target(self) -> None:
        tau = self.config.target_tau
        with torch.no_grad():
            torch._foreach_lerp_(self._target_parameters, self._online_parameters, tau)

    # -- what it has learned ----------------------------------------------------------------------

    def usefulness(self, cases: Sequence[Case]) -> np.ndarray:
        """Mean contribution q(s, c) of each case, over the recorded task states most like its own task.

        q is the log-odds of success the case adds when shown, so 0 means no effect. It is averaged
        over the `USEFULNESS_STATES` recorded states most similar to the case (the tasks it would be
        a candidate for); with nothing recorded, the case's own task stands in for the state.
        """
        bank = self._bank()
        if not cases:
            return np.zeros(0, dtype=np.float32)
        vectors = np.asarray(bank.vectors([c.id for c in cases]), dtype=np.float32)
        recorded = (np.unique(np.stack([t.state for t in self.replay.transitions]), axis=0)
                    if len(self.replay) else None)
        case_features = self.features(cases, np.zeros(len(cases), dtype=np.float32))
        states, pair_vectors, pair_features, owner = [], [], [], []
        for i, vector in enumerate(vectors):
            near = vector[None] if recorded is None else recorded[top_k(recorded @ vector, USEFULNESS_STATES)]
            features = np.repeat(case_features[i][None], len(near), axis=0)
            features[:, FEATURES.index("cosine")] = near @ vector
            states.append(near), pair_vectors.append(np.repeat(vector[None], len(near), axis=0))
            pair_features.append(features), owner.append(np.full(len(near), i))
        states, pair_vectors = np.concatenate(states), np.concatenate(pair_vectors)
        pair_features, owner = np.concatenate(pair_features), np.concatenate(owner)
        q = np.empty(len(states), dtype=np.float32)
        with torch.no_grad(), torch_threads(self.config.torch_threads):
            for start in range(0, len(states), 4096):
                part = slice(start, start + 4096)
                q[part] = self.net(torch.from_numpy(states[part]), torch.from_numpy(pair_vectors[part])[:, None],
                                   torch.from_numpy(pair_features[part])[:, None])[:, 0].numpy()
        return (np.bincount(owner, weights=q, minlength=len(cases)) / np.bincount(owner, minlength=len(cases))).astype(np.float32)

    def summary(self) -> dict[str, Any]:
        """Network size, replay buffer, cases with statistics, and the loss on the latest recorded steps."""
        self._bank()
        recent = list(self.replay.transitions)[-256:]
        with torch.no_grad(), torch_threads(self.config.torch_threads):
            recent_loss = float(self.loss(recent).item()) if recent else None
        return {"step": self.step, "credit": self.config.credit,
                "parameters": sum(p.numel() for p in self.net.parameters()),
                "replay_size": len(self.replay), "cases_with_stats": len(self.replay.stats),
                "recent_loss": recent_loss}

    # -- checkpoints ------------------------------------------------------------------------------

    def _model_state(self) -> dict[str, Any]:
        # The residuals are learned state too; the change detector's sums are not kept (they restart at 0).
        return {"model": self.net.state_dict(), "optimizer": self.optimizer.state_dict(),
                "residual": {"ids": list(self.residual), "values": torch.tensor(list(self.residual.values()), dtype=torch.float64)}}

    def _load_model_state(self, checkpoint: dict[str, Any], path: str | os.PathLike) -> None:
        try:
            self.net.load_state_dict(checkpoint["model"])
            self.optimizer.load_state_dict(checkpoint["optimizer"])
            for group in self.optimizer.param_groups:
                group["fused"] = True  # a checkpoint from before the fused optimizer would switch it off
        except (KeyError, RuntimeError, ValueError) as exc:
            raise PolicyError(
                f"policy checkpoint {str(path)!r} does not fit this network architecture "
                f"(features {list(FEATURES)}, hidden={self.config.hidden}): {str(exc).splitlines()[0]}; "
                f"it was written by another version of NeuralQPolicy, train a new one"
            ) from None
        saved = checkpoint.get("residual") or {"ids": [], "values": []}  # absent from checkpoints before issue 12
        self.residual = {case_id: float(value) for case_id, value in zip(saved["ids"], saved["values"])}
        # The target network is not saved: it restarts as a copy of the online one.
        self.target.load_state_dict(self.net.state_dict())
        self.rng = np.random.default_rng([self.config.seed, self.step])


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


def _padded(batch: Sequence[Transition], vectors: list[np.ndarray], features: list[np.ndarray], *,
            states: list[np.ndarray] | None = None, dim: int | None = None):
    """Stack variable-length case lists into (B, M, ...) tensors with a 0/1 mask."""
    states = [t.state for t in batch] if states is None else states
    dim = dim or states[0].shape[0]
    width = max(1, max(len(v) for v in vectors))
    n_features = len(FEATURES)
    stacked = torch.from_numpy(np.stack(states).astype(np.float32, copy=False))
    if all(len(v) == width for v in vectors):
        # Every step showed the same number of cases (the usual K): one stack, no padding.
        return (stacked, torch.from_numpy(np.stack(vectors).astype(np.float32, copy=False)),
                torch.from_numpy(np.stack(features).astype(np.float32, copy=False)), torch.ones(len(batch), width))
    case_array = np.zeros((len(batch), width, dim), dtype=np.float32)
    feature_array = np.zeros((len(batch), width, n_features), dtype=np.float32)
    mask = np.zeros((len(batch), width), dtype=np.float32)
    for i, (v, f) in enumerate(zip(vectors, features)):
        case_array[i, : len(v)] = v
        feature_array[i, : len(f)] = f
        mask[i, : len(v)] = 1.0
    return stacked, torch.from_numpy(case_array), torch.from_numpy(feature_array), torch.from_numpy(mask)
