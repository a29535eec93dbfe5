"""A writer run as its own process by the crash and concurrency tests.

    python -m tests.bank.writer_process BANK NAMESPACE BATCHES BATCH_SIZE    (BANK: a file or a URL)

Adds batches of cases and prints each batch's ids once add_many has returned,
so the parent knows exactly which adds were acknowledged.
"""

import sys

import numpy as np

from memento import Case, CaseBank
from tests.fakes import FakeHashEmbedder


def main() -> None:
    path, namespace, batches, batch_size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    rng = np.random.default_rng(abs(hash(namespace)) % 2**32)
    bank = CaseBank.open(path, embedder=FakeHashEmbedder())  # a file or a postgresql:// URL
    for b in range(batches):
        cases = [Case(namespace=(namespace,), task=f"{namespace} task {b}-{i}") for i in range(batch_size)]
        bank.add_many(cases, vectors=rng.normal(size=(batch_size, 64)))
        # a search forces this process to replay what the others wrote
        bank.search(rng.normal(size=64), k=3)
        print(" ".join(c.id for c in cases), flush=True)
    bank.close()


if __name__ == "__main__":
    main()
