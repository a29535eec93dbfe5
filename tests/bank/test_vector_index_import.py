"""`import memento` does not load FAISS: the bank's names load it on first use."""

import subprocess
import sys

from tests.conftest import ROOT

PROBE = """
import sys
import memento
before = {name for name in ("faiss", "sqlite_utils", "memento.bank") if name in sys.modules}
bank_class = memento.CaseBank
from memento import IndexConfig, SearchHit
print(sorted(before), "faiss" in sys.modules, bank_class.__name__, IndexConfig.__name__, SearchHit.__name__)
"""


def test_import_memento_leaves_faiss_until_a_bank_is_used():
    result = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["[]", "True", "CaseBank", "IndexConfig", "SearchHit"]
