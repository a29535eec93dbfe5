"""The policy the inspector scores cases with: a checkpoint (`--policy`) or, without one, similarity.

The policies live outside the library, so they are reached as the CLI reaches them, through the
`policies` plugin (`memento.plugins`). A checkpoint is loaded on first use and again whenever its
file changes (a run that keeps learning saves it after each episode). The policy's calls are
serialised: a learned policy is not safe to use from two threads at once.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from memento.case import Case
from memento.errors import PolicyError
from memento.plugins import plugin

DEFAULT_POLICY = "similarity"
"""What `memento ask` uses without --policy: the k most similar cases."""


class PolicyView:
    """One policy for the server's lifetime, reloaded when its checkpoint changes."""

    def __init__(self, bank: Any, path: Path | None = None):
        self.bank = bank
        self.path = Path(path) if path is not None else None
        self._lock = threading.Lock()
        self._policy: Any = None
        self._stamp: tuple[int, int] | None = None

    def _current(self) -> Any:
        """The policy to use now (called with the lock held)."""
        policies = plugin("policies")
        if self.path is None:
            if self._policy is None:
                self._policy = policies.make_policy(DEFAULT_POLICY, self.bank)
            return self._policy
        status = self.path.stat()
        stamp = (status.st_mtime_ns, status.st_size)
        if stamp != self._stamp:
            if self._policy is not None:
                self._policy.close()  # frees its name on the bank for the reloaded one
                self._policy = None
            self._policy = policies.load_policy(self.path, self.bank)
            self._stamp = stamp
        return self._policy

    @property
    def kind(self) -> str:
        with self._lock:
            return self._current().kind

    @property
    def label(self) -> str:
        """How the pages name the policy: its kind, and its checkpoint when there is one."""
        return self.kind if self.path is None else f"{self.kind} ({self.path.name})"

    def select(self, text: str, *, k: int, namespace: tuple[str, ...] | None) -> list[Any]:
        """The policy's choice for the task `text` without exploring: the cases the agent would be shown."""
        from memento.policy import TaskState

        state = TaskState.from_task(self.bank, text)
        with self._lock:
            return self._current().select(state, k=k, namespace=namespace, explore=False)

    def usefulness(self, cases: Sequence[Case]) -> tuple[dict[str, float] | None, str | None]:
        """(the policy's usefulness by case id, None) or (None, why it has none) for a policy that learns nothing."""
        if self.path is None:
            return None, (f"no policy given: the agent is shown the most similar cases ({DEFAULT_POLICY}); "
                          f"start with --policy CHECKPOINT to see a learned policy's usefulness")
        if not cases:
            return {}, None
        with self._lock:
            try:
                scores = self._current().usefulness(list(cases))
            except PolicyError as error:
                return None, str(error)
        return {case.id: float(score) for case, score in zip(cases, scores)}, None

    def close(self) -> None:
        with self._lock:
            if self._policy is not None:
                self._policy.close()
                self._policy = None
