"""The CLI's default embedder is the packaged all-MiniLM-L6-v2: a bank made with no --embedder uses it."""

import pytest

pytestmark = pytest.mark.slow  # loads the real model


def test_init_add_search_with_the_packaged_model(cli):
    made = cli.ok("init", "real.db", env={"MEMENTO_EMBEDDER": None})
    assert made["embedder"] == "all-MiniLM-L6-v2" and made["dim"] == 384
    cases = '{"id": "bread", "task": "How do I bake sourdough bread?"}\n{"id": "tax", "task": "When is the tax return due?"}\n'
    cli.ok("cases", "add", "-", "--bank", "real.db", input=cases, env={"MEMENTO_EMBEDDER": None})
    hits = cli.ok("cases", "search", "recipe for a loaf", "--bank", "real.db", env={"MEMENTO_EMBEDDER": None})
    assert [h["id"] for h in hits] == ["bread", "tax"] and hits[0]["score"] > hits[1]["score"] + 0.1
    named = cli.ok("cases", "search", "filing taxes", "-k", "1", "--bank", "real.db",
                   env={"MEMENTO_EMBEDDER": "all-MiniLM-L6-v2"})
    assert named[0]["id"] == "tax"
    assert "'fake-hash'" in cli.fails("cases", "ls", "--bank", "real.db")  # the fake named by the fixture's env
