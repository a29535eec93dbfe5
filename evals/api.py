"""What the `memento eval` commands use from the evals, in one place (the entry point `evals` of `memento.plugins`)."""

from memento.evals.config import EvalConfig, load_config
from memento.evals.records import EvalSummary
from memento.evals.report import error_line
from memento.evals.runner import run_eval

__all__ = ["EvalConfig", "EvalSummary", "error_line", "load_config", "run_eval"]
