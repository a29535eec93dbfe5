"""`memento init` and the reading commands (ls, show, search, stats, export, import, add, reindex) on a real bank file."""

import json

from memento import CaseBank
from tests.fakes import FakeHashEmbedder


def test_init_records_the_embedder_and_refuses_an_existing_path(cli):
    made = cli.ok("init", "new.db")
    assert made == {"path": "new.db", "embedder": "fake-hash", "dim": 64, "index": "flat"}
    with CaseBank(cli.folder / "new.db", FakeHashEmbedder(), create=False) as bank:
        assert bank.count() == 0
    assert "already exists" in cli.fails("init", "new.db")


def test_ls_filters_sorts_and_pages(cli, bank):
    everything = cli.ok("cases", "ls", "--bank", bank)
    assert [c["id"] for c in everything][:1] == ["moss-1"]  # oldest first: created in 2024
    assert len(everything) == 6 and "trajectory" not in everything[0]
    assert {c["id"] for c in cli.ok("cases", "ls", "--namespace", "acme", "--bank", bank)} == {"acme-1", "acme-2", "acme-3"}
    assert {c["id"] for c in cli.ok("cases", "ls", "--where", "judge=broken", "--bank", bank)} == {"acme-2", "river-2"}
    assert {c["id"] for c in cli.ok("cases", "ls", "--dataset", "simpleqa", "--max-reward", "0.5", "--bank", bank)} == {"river-2", "moss-1"}
    assert [c["id"] for c in cli.ok("cases", "ls", "--text", "LUNE", "--bank", bank)] == ["river-1", "river-2"]
    assert [c["id"] for c in cli.ok("cases", "ls", "--until", "2025-01-01", "--bank", bank)] == ["moss-1"]
    assert "moss-1" not in {c["id"] for c in cli.ok("cases", "ls", "--since", "2025-01-01", "--bank", bank)}
    by_reward = cli.ok("cases", "ls", "--order-by", "reward", "--descending", "--limit", "2", "--offset", "1", "--bank", bank)
    assert [c["reward"] for c in by_reward] == [1.0, 1.0]
    assert cli.ok("cases", "ls", "--full", "--limit", "1", "--order-by", "id", "--bank", bank)[0]["plan"] == ["search Acme founder"]


def test_output_formats_json_nl_and_table(cli, bank):
    lines = cli("cases", "ls", "--nl", "--namespace", "acme", "--bank", bank).stdout.splitlines()
    assert [json.loads(line)["id"] for line in lines] == ["acme-1", "acme-2", "acme-3"]
    table = cli("cases", "ls", "--table", "--namespace", "acme", "--bank", bank).stdout
    assert "acme-3" in table and "┃ id" in table and not table.lstrip().startswith("[")
    stats_table = cli("cases", "stats", "--table", "--bank", bank).stdout
    assert "healthy" in stats_table and "field" in stats_table


def test_show_prints_the_whole_case_and_its_trace(cli, bank):
    case = cli.ok("cases", "show", "acme-1", "--bank", bank)
    assert case["trajectory"][0]["observation"] == "Ada Vell founded Acme" and case["plan"] == ["search Acme founder"]
    assert [c["id"] for c in cli.ok("cases", "show", "river-1", "acme-3", "--bank", bank)] == ["river-1", "acme-3"]


def test_search_returns_scores_best_first_and_takes_filters(cli, bank):
    hits = cli.ok("cases", "search", "Which river flows through Dunmere?", "-k", "3", "--bank", bank)
    assert hits[0]["id"] == "river-1" and abs(hits[0]["score"] - 1.0) < 1e-5
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True) and len(hits) == 3
    acme = cli.ok("cases", "search", "Which river flows through Dunmere?", "--namespace", "acme", "--bank", bank)
    assert {h["id"] for h in acme} == {"acme-1", "acme-2", "acme-3"}


def test_add_reads_a_json_list_jsonl_and_stdin(cli, bank):
    (cli.folder / "one.json").write_text(json.dumps([{"task": "What did Borin Tal invent?", "answer": "the loom"}]))
    added = cli.ok("cases", "add", "one.json", "--namespace", "tal", "--bank", bank)
    assert cli.ok("cases", "show", added[0]["id"], "--bank", bank)["namespace"] == ["tal"]
    piped = cli.ok("cases", "add", "-", "--bank", bank, input=json.dumps({"id": "piped", "task": "A piped task?"}))
    assert piped == [{"id": "piped", "task": "A piped task?"}]
    assert len(cli.ok("cases", "ls", "--bank", bank)) == 8


def test_export_then_import_into_a_fresh_bank_keeps_every_case(cli, bank):
    assert cli.ok("cases", "export", "all.jsonl", "--bank", bank) == {"exported": 6, "path": "all.jsonl"}
    cli.ok("init", "copy.db")
    assert cli.ok("cases", "import", "all.jsonl", "--bank", "copy.db") == {"imported": 6}
    assert cli.ok("cases", "ls", "--full", "--bank", "copy.db") == cli.ok("cases", "ls", "--full", "--bank", bank)
    assert cli.ok("cases", "import", "all.jsonl", "--on-conflict", "skip", "--bank", "copy.db") == {"imported": 0}
    only_acme = cli("cases", "export", "--namespace", "acme", "--bank", bank).stdout.splitlines()
    assert len(only_acme) == 3


def test_import_skip_bad_lines_leaves_out_only_the_bad_line(cli, bank):
    (cli.folder / "mixed.jsonl").write_text('{"task": "good one?"}\nnot json\n{"task": ""}\n{"task": "good two?"}\n')
    assert cli.ok("cases", "import", "mixed.jsonl", "--skip-bad-lines", "--bank", bank) == {"imported": 2}


def test_stats_counts_namespaces_datasets_and_index_health(cli, bank):
    stats = cli.ok("cases", "stats", "--bank", bank)
    assert stats["cases"] == 6 and stats["namespaces"] == {"acme": 3, "default": 2, "globex": 1}
    assert stats["datasets"] == {"hotpotqa": 3, "simpleqa": 3}
    assert stats["reward"]["max"] == 1.0 and stats["index"]["healthy"] is True


def test_reindex_rebuilds_a_deleted_index_file_and_re_embeds(cli, bank, monkeypatch):
    (cli.folder / "cases.db.faiss").unlink()
    assert cli.ok("cases", "reindex", "--bank", bank)["index"]["vectors"] == 6
    assert (cli.folder / "cases.db.faiss").exists()
    from memento.cli.banks import EMBEDDERS

    monkeypatch.setitem(EMBEDDERS, "fake-hash-32", lambda: FakeHashEmbedder(dim=32, name="fake-hash-32"))
    report = cli.ok("cases", "reindex", "--re-embed", "fake-hash-32", "--bank", bank)
    assert report["embedder"] == {"name": "fake-hash-32", "dim": 32} and report["index"]["healthy"]
    hits = cli.ok("cases", "search", "How long is the river Lune?", "-k", "1", "--embedder", "fake-hash-32", "--bank", bank)
    assert hits[0]["id"] == "river-2"
    assert "fake-hash-32" in cli.fails("cases", "ls", "--bank", bank)  # the old embedder no longer opens it


def test_a_big_import_is_embedded_in_chunks_behind_the_progress_bar(cli, bank):
    lines = [json.dumps({"id": f"bulk-{i}", "task": f"Bulk question number {i} about topic {i % 7}?"}) for i in range(600)]
    (cli.folder / "bulk.jsonl").write_text("\n".join(lines) + "\n")
    assert cli.ok("cases", "import", "bulk.jsonl", "--bank", bank) == {"imported": 600}
    hits = cli.ok("cases", "search", "Bulk question number 599 about topic 4?", "-k", "5", "--bank", bank)
    exact = {h["id"] for h in hits if abs(h["score"] - 1.0) < 1e-5}  # the fake's 64 buckets collide at times
    assert "bulk-599" in exact  # the last chunk's vectors line up with their cases
