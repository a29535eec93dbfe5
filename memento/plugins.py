"""Implementations the library reaches by name, never by import: the policies and the eval runner.

The library stands alone (it imports no sibling package); the CLI's `policy`, `ask` and `eval`
commands need the case-selection policies and the eval runner, which the distribution declares
as entry points in the group `memento.plugins` (see pyproject.toml):

    policies = plugin("policies")            # the policies package: make_policy, load_policy
    evals = plugin("evals")                  # evals.api: EvalConfig, load_config, run_eval, ...

Another distribution can offer its own under the same names.
"""

from __future__ import annotations

from functools import lru_cache
from importlib.metadata import entry_points
from typing import Any

from memento.errors import NotFoundError

GROUP = "memento.plugins"


@lru_cache(maxsize=None)
def plugin(name: str) -> Any:
    """The object the entry point `name` of group `memento.plugins` names, loaded on first use."""
    found = {point.name: point for point in entry_points(group=GROUP)}
    if name not in found:
        raise NotFoundError(f"no memento plugin {name!r} is installed (group {GROUP!r} has {sorted(found)}); "
                            f"install memento with its policies and evals, e.g. `pip install -e .` in the repository")
    return found[name].load()
