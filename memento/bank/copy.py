"""Moving a bank between backends: `copy_bank(src, dst)`, behind `memento bank copy SRC DST`.

Everything a bank holds goes across: cases with their stored vectors (not re-embedded), and for
each policy its replay rows, case statistics, episodic entries and checkpoints, and the agent's
traces. The copy is then verified: `bank_digest` counts and hashes each part on both sides in a
backend-neutral form (times in UTC, vectors as float32 bytes, JSON with sorted keys), and a
mismatch raises BankError naming the part.

    with CaseBank.open("cases.db") as src, CaseBank.open("postgresql://db/memento", src.embedder) as dst:
        report = copy_bank(src, dst)     # {"cases": 1200, ..., "verified": True, "digest": {...}}
"""

from __future__ import annotations

import hashlib
import io
import json
from datetime import timezone
from typing import Any

import numpy as np

from memento.bank.interface import Bank, PolicyState
from memento.case import Case
from memento.errors import BankError, EmbedderMismatchError

CHUNK = 500
ALL = 1 << 62  # "no limit" for replay_rows and list_traces


def copy_bank(src: Bank, dst: Bank) -> dict[str, Any]:
    """Copy every case, policy record and trace of `src` into the empty bank `dst`, then verify the copy."""
    if (src.embedder_name, src.dim) != (dst.embedder_name, dst.dim):
        raise EmbedderMismatchError(
            f"bank '{dst.path}' uses embedder {dst.embedder_name!r} (dim {dst.dim}) but '{src.path}' uses "
            f"{src.embedder_name!r} (dim {src.dim}); create the destination with the source's embedder")
    if len(dst) or dst.policy_names() or dst.list_traces(limit=1):
        raise BankError(f"bank '{dst.path}' is not empty ({len(dst)} cases); copy into a new bank, so nothing mixes")
    ids = [c.id for c in src.iter_cases(order_by="created_at")]
    for start in range(0, len(ids), CHUNK):
        # Through JSON lines, the path `cases export | cases import` takes: vectors arrive bit for bit (add_many
        # would rescale them to unit length again, which moves the last bit of some floats).
        lines = io.StringIO()
        src.export_jsonl(lines, with_vectors=True, ids=ids[start:start + CHUNK])
        lines.seek(0)
        dst.import_jsonl(lines)
    for name in src.policy_names():
        dst.restore_policy(dump_policy(src, name))
    for trace in _traces(src):
        dst.save_trace(trace)
    before, after = bank_digest(src), bank_digest(dst)
    wrong = [part for part in before if before[part] != after[part]]
    if wrong:
        raise BankError(f"the copy in '{dst.path}' differs from '{src.path}' in {', '.join(wrong)} "
                        f"({before[wrong[0]]} vs {after[wrong[0]]}); delete the destination and copy again")
    return {"from": str(src.path), "to": str(dst.path), **{part: d["count"] for part, d in after.items()},
            "verified": True, "digest": after}


def dump_policy(bank: Bank, policy: str) -> PolicyState:
    """Everything `policy` keeps in `bank` (feature matrices as wide as they were stored)."""
    return PolicyState(policy, bank.replay_rows(policy, limit=ALL, n_features=-1), bank.case_stats(policy),
                       bank.episodic_entries(policy),
                       [(v, bank.load_checkpoint(policy, version=v)[1]) for v in bank.checkpoint_versions(policy)],
                       bank.episodic_episodes(policy))


def _traces(bank: Bank) -> list[dict[str, Any]]:
    summaries = bank.list_traces(limit=ALL)
    traces = []
    for summary in reversed(summaries):  # oldest first, so the newest stays newest
        trace = bank.get_trace(summary["episode_id"])
        trace.setdefault("created_at", summary["created_at"])
        traces.append(trace)
    return traces


def bank_digest(bank: Bank) -> dict[str, dict[str, Any]]:
    """{part: {"count", "sha256"}} for cases (with vectors), replay, stats, entries, checkpoints and traces."""
    parts: dict[str, list[bytes]] = {p: [] for p in ("cases", "replay", "stats", "entries", "checkpoints", "traces")}
    cases = sorted(bank.iter_cases(), key=lambda c: c.id)
    for start in range(0, len(cases), CHUNK):
        chunk = cases[start:start + CHUNK]
        for case, vector in zip(chunk, bank.vectors([c.id for c in chunk])):
            parts["cases"].append(_canonical_case(case) + np.asarray(vector, dtype=np.float32).tobytes())
    for name in bank.policy_names():
        for row in bank.replay_rows(name, limit=ALL, n_features=-1):
            parts["replay"].append(_json([row.policy, row.episode_id, list(row.case_ids), row.reward, row.done,
                                          list(row.next_ids), row.created_at]) + _bytes(row.state)
                                   + _bytes(row.case_features) + _bytes(row.next_state) + _bytes(row.next_features))
        for case_id, (shown, total) in sorted(bank.case_stats(name).items()):
            parts["stats"].append(_json([name, case_id, shown, total]))
        for entry in bank.episodic_entries(name):
            parts["entries"].append(_json([name, entry.case_id, entry.q, entry.visits]) + _bytes(entry.state))
        for version in bank.checkpoint_versions(name):
            parts["checkpoints"].append(_json([name, version]) + bank.load_checkpoint(name, version=version)[1])
    for summary in bank.list_traces(limit=ALL):
        parts["traces"].append(_json(bank.get_trace(summary["episode_id"])))
    return {part: {"count": len(items), "sha256": _sha(items)} for part, items in parts.items()}


def _canonical_case(case: Case) -> bytes:
    record = case.model_dump(mode="json")
    record["created_at"] = case.created_at.astimezone(timezone.utc).isoformat()
    record["updated_at"] = case.updated_at.astimezone(timezone.utc).isoformat()
    return _json(record)


def _json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str).encode()


def _bytes(array: np.ndarray | None) -> bytes:
    return b"-" if array is None else np.ascontiguousarray(array, dtype=np.float32).tobytes()


def _sha(items: list[bytes]) -> str:
    digest = hashlib.sha256()
    for item in items:
        digest.update(len(item).to_bytes(8, "little") + item)
    return digest.hexdigest()
