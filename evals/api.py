"""What the `memento eval` commands use from the evals, in one place (the entry point `evals` of `memento.plugins`)."""

from evals.config import EvalConfig, load_config
from evals.records import EvalSummary
from evals.report import error_line
from evals.runner import run_eval

__all__ = ["EvalConfig", "EvalSummary", "error_line", "load_config", "run_eval"]
