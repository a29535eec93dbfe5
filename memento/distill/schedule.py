"""Distil every N new successful cases, in a background process, without blocking episodes.

    schedule = DistillSchedule("cases.db", DistillConfig(), every=50)
    ...after each episode:
    schedule.poll(bank)          # returns at once; starts a run when 50 new successes are in
    ...at the end:
    schedule.close()             # waits for a running distillation; schedule.runs holds every run

A run is `python -m memento.distill.worker` on a JSON file holding the bank path and the config;
it writes its report (the gate's before/after) beside that file. At most one run per schedule is
in flight; successes that arrive meanwhile count towards the next. The adapter a run promotes is
what any backend with `distilled_from=<bank>` uses from its next call on.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import memento
from memento.distill.run import DistillConfig
from memento.errors import ValidationError


class DistillSchedule:
    """Starts a background distillation of one bank every `every` new cases with reward >= min_reward."""

    def __init__(self, bank_path: str | Path, config: DistillConfig | None = None, *, every: int = 50,
                 work_dir: str | Path | None = None, start_count: int = 0):
        if every < 1:
            raise ValidationError(f"every={every} must be at least 1: the new successful cases between distillations")
        self.bank_path = Path(bank_path)
        self.config = config or DistillConfig()
        self.every = every
        self.work_dir = Path(work_dir) if work_dir else self.bank_path.with_name(self.bank_path.name + ".distill-runs")
        self.last_count = start_count
        """Successful cases in the bank when the last run started."""
        self.runs: list[dict[str, Any]] = []
        """One record per started run: when, at how many successes, and (once done) its report."""
        self._process: subprocess.Popen | None = None

    def successes(self, bank: Any) -> int:
        return bank.count(min_reward=self.config.selection.min_reward)

    def poll(self, bank: Any) -> dict[str, Any] | None:
        """Collect a finished run, start one when due; never waits. Returns the run just finished, if any."""
        finished = self._collect()
        if self._process is None and self.successes(bank) - self.last_count >= self.every:
            self._start(self.successes(bank))
        return finished

    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def close(self, *, wait: bool = True, timeout_s: float | None = None) -> list[dict[str, Any]]:
        """Wait for (or, with wait=False, stop) the run in flight; returns every run's record."""
        if self._process is not None:
            if wait:
                try:
                    self._process.wait(timeout=timeout_s)
                except subprocess.TimeoutExpired:
                    self._process.terminate()
                    self._process.wait()
            else:
                self._process.terminate()
                self._process.wait()
            self._collect()
        return self.runs

    def _start(self, count: int) -> None:
        number = len(self.runs) + 1
        self.work_dir.mkdir(parents=True, exist_ok=True)
        request = self.work_dir / f"run-{number:03d}.json"
        report = self.work_dir / f"run-{number:03d}.report.json"
        request.write_text(json.dumps({"bank": str(self.bank_path), "config": asdict(self.config),
                                       "report": str(report)}, default=str), encoding="utf-8")
        env = dict(os.environ)
        # The child imports the same memento as this process, wherever it was imported from.
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(memento.__file__).parents[1]), env.get("PYTHONPATH")]))
        with open(self.work_dir / f"run-{number:03d}.log", "w", encoding="utf-8") as log:  # the child keeps its own copy
            self._process = subprocess.Popen([sys.executable, "-m", "memento.distill.worker", str(request)],
                                             stdout=log, stderr=subprocess.STDOUT, env=env)
        self.last_count = count
        self.runs.append({"run": number, "started_at": time.time(), "successes": count, "report_path": str(report),
                          "status": "running"})

    def _collect(self) -> dict[str, Any] | None:
        if self._process is None or self._process.poll() is None:
            return None
        run = self.runs[-1]
        code, self._process = self._process.returncode, None
        run["finished_at"] = time.time()
        report_path = Path(run["report_path"])
        if code == 0 and report_path.exists():
            report = json.loads(report_path.read_text(encoding="utf-8"))
            run.update(status="done", **report)
        else:
            log = report_path.with_name(report_path.name.replace(".report.json", ".log"))
            tail = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-1:] if log.exists() else []
            run.update(status="failed", exit_code=code, error=tail[0] if tail else "")
        return run
