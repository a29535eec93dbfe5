"""The background process a `DistillSchedule` starts: one distillation, its summary written as JSON.

    python -m memento.distill.worker request.json

`request.json` holds {"bank": path, "config": DistillConfig as a dict, "report": path to write}.
The summary holds the gate's before/after scores, so a run's report can show each distillation.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from memento.bank import CaseBank
from memento.distill.run import config_from_dict, distill


def main(argv: list[str]) -> int:
    request = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    with CaseBank(request["bank"], create=False) as bank:
        manifest = distill(bank, config_from_dict(request["config"]), progress=False)
    gate = manifest["gate"]
    summary = {"version": manifest["version"], "promoted": manifest["promoted"], "gate_passed": gate["passed"],
               "failed": gate["failed"], "checks": [c["why"] for c in gate["checks"]],
               "before": gate["scores"]["base"], "after": gate["scores"]["candidate"],
               "train_cases": len(manifest["provenance"]["train_case_ids"]), "data_hash": manifest["data_hash"],
               "seconds_per_step": manifest["training"]["seconds_per_step"]}
    partial = Path(request["report"] + ".partial")
    partial.write_text(json.dumps(summary, indent=2), encoding="utf-8")
    os.replace(partial, request["report"])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
