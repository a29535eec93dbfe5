"""What every benchmark script shares: the machine it ran on, and saving plus printing its result."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any


def machine_info(**extra: Any) -> dict[str, Any]:
    """Cores, platform and load average now: benchmarks on a shared machine must say how busy it was."""
    return {"cores": os.cpu_count(), "platform": platform.platform(), "load_avg_at_start": os.getloadavg(), **extra}


def save_and_print(result: dict[str, Any], out: Path, table: str) -> None:
    """Record the load at the end, write the JSON, print the table and where the JSON went."""
    result.setdefault("machine", {})["load_avg_at_end"] = os.getloadavg()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(table)
    print(f"\nsaved {out}")
