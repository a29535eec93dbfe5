"""A writer for the kill -9 tests: random adds, updates, deletes and index saves on one bank, forever.

    python -m tests.faults.chaos_writer BANK NAMESPACE SEED

Before each change it prints what it is about to do (`intent ...`), and after the call returned
(the change is acknowledged) `done ...`, flushed, so the parent killing it knows exactly which
changes were acknowledged and which one was in flight. Ids are `NAMESPACE-SEED-BATCH-I`, so a
batch can be checked for all-or-nothing.
"""

import json
import sys

import numpy as np

from memento import Case, CaseBank
from tests.fakes import FakeHashEmbedder

DIM = 64


def say(*fields) -> None:
    print(json.dumps(fields), flush=True)


def main() -> None:
    path, namespace, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
    rng = np.random.default_rng(seed)
    bank = CaseBank(path, embedder=FakeHashEmbedder())
    mine = [c.id for c in bank.iter_cases(namespace=(namespace,))]
    say("ready", len(mine))
    for batch in range(1_000_000):
        roll = rng.random()
        if roll < 0.55 or len(mine) < 10:
            n = int(rng.integers(1, 40))
            ids = [f"{namespace}-{seed}-{batch}-{i}" for i in range(n)]
            say("intent", "add", ids)
            bank.add_many([Case(id=i, namespace=(namespace,), task=f"task {i}") for i in ids],
                          vectors=rng.normal(size=(n, DIM)))
            mine += ids
            say("done", "add", ids)
        elif roll < 0.7:
            victim = mine[int(rng.integers(len(mine)))]
            say("intent", "del", [victim])
            bank.delete(victim)
            mine.remove(victim)
            say("done", "del", [victim])
        elif roll < 0.85:  # a new vector for an old case: a delete and an add in one transaction
            target = mine[int(rng.integers(len(mine)))]
            answer = f"updated in batch {batch}"
            say("intent", "upd", [target], answer)
            bank.update(target, answer=answer, vector=rng.normal(size=DIM))
            say("done", "upd", [target], answer)
        else:
            say("intent", "save", [])
            bank.save_index()
            say("done", "save", [])
        bank.search(rng.normal(size=DIM), k=3)  # replays what the other writer wrote


if __name__ == "__main__":
    main()
