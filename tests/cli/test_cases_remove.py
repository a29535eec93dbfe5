"""`memento cases rm | dedup | prune`: confirmation, dry runs, and the trash that `import` restores."""

import json
from pathlib import Path


def test_rm_by_id_goes_to_the_trash_and_import_restores_it_exactly(cli, bank):
    before = cli.snapshot(bank)
    removed = cli.ok("cases", "rm", "acme-1", "river-2", "--yes", "--bank", bank)
    assert removed["deleted"] == 2
    trash = Path(removed["trash"])
    assert trash.parent == cli.folder / "cases.db.trash"
    assert {json.loads(line)["id"] for line in trash.read_text().splitlines()} == {"acme-1", "river-2"}
    assert {c["id"] for c in cli.ok("cases", "ls", "--bank", bank)} == {"acme-2", "acme-3", "river-1", "moss-1"}
    assert cli.ok("cases", "import", trash, "--bank", bank) == {"imported": 2}
    assert sorted(cli.snapshot(bank).splitlines()) == sorted(before.splitlines())  # same rows, same vectors


def test_rm_where_asks_first_and_a_no_changes_nothing(cli, bank):
    before = cli.snapshot(bank)
    refused = cli("cases", "rm", "--where", "judge=broken", "--bank", bank, input="n\n")
    assert refused.exit_code == 1 and "Remove 2 case(s)" in refused.stderr
    assert cli.snapshot(bank) == before and not (cli.folder / "cases.db.trash").exists()
    accepted = cli("cases", "rm", "--where", "judge=broken", "--bank", bank, input="y\n")
    assert accepted.exit_code == 0 and "restore with: memento cases import" in accepted.stderr
    assert {c["id"] for c in cli.ok("cases", "ls", "--bank", bank)} == {"acme-1", "acme-3", "river-1", "moss-1"}


def test_rm_dry_run_lists_and_changes_nothing(cli, bank):
    before = cli.snapshot(bank)
    listed = cli.ok("cases", "rm", "--namespace", "acme", "--dry-run", "--bank", bank)
    assert {c["id"] for c in listed} == {"acme-1", "acme-2", "acme-3"}
    assert cli.snapshot(bank) == before


def test_rm_refuses_unknown_ids_and_missing_criteria(cli, bank):
    before = cli.snapshot(bank)
    assert "'nope' is not in bank" in cli.fails("cases", "rm", "acme-1", "nope", "--yes", "--bank", bank)
    assert "needs case ids or at least one filter" in cli.fails("cases", "rm", "--yes", "--bank", bank)
    assert "not both" in cli.fails("cases", "rm", "acme-1", "--namespace", "acme", "--yes", "--bank", bank)
    assert cli.snapshot(bank) == before and not (cli.folder / "cases.db.trash").exists()


def test_dedup_keeps_the_best_of_each_group_and_applies_only_when_asked(cli, bank):
    before = cli.snapshot(bank)
    groups = cli.ok("cases", "dedup", "--bank", bank)
    assert [(g["keep"], g["remove"]) for g in groups] == [("acme-1", ["acme-2"])]  # same task: keep reward 1
    assert cli.snapshot(bank) == before
    applied = cli.ok("cases", "dedup", "--apply", "--bank", bank)
    assert applied["deleted"] == 1 and applied["groups"] == groups
    assert "acme-2" not in {c["id"] for c in cli.ok("cases", "ls", "--bank", bank)}
    assert cli.ok("cases", "import", applied["trash"], "--bank", bank) == {"imported": 1}


def test_dedup_prefers_the_newest_on_equal_reward_and_stays_within_a_namespace(cli, bank):
    copies = [{"id": "old", "task": "Which river flows through Dunmere?", "reward": 1.0,
               "created_at": "2024-05-01T00:00:00+00:00"},
              {"id": "other-tenant", "namespace": "globex", "task": "Which river flows through Dunmere?", "reward": 1.0}]
    cli.ok("cases", "add", "-", "--bank", bank, input=json.dumps(copies))
    groups = cli.ok("cases", "dedup", "--bank", bank)
    assert ("river-1", ["old"]) in [(g["keep"], g["remove"]) for g in groups]
    assert all("other-tenant" not in g["remove"] and g["keep"] != "other-tenant" for g in groups)
    assert cli.ok("cases", "dedup", "--namespace", "globex", "--bank", bank) == []


def test_prune_by_age_and_by_reward(cli, bank):
    aged = cli.ok("cases", "prune", "--older-than", "90d", "--dry-run", "--bank", bank)
    assert [c["id"] for c in aged] == ["moss-1"]
    pruned = cli.ok("cases", "prune", "--max-reward", "0", "--namespace", "acme", "--yes", "--bank", bank)
    assert pruned["deleted"] == 1 and "acme-2" in Path(pruned["trash"]).read_text()
    assert "moss-1" in {c["id"] for c in cli.ok("cases", "ls", "--bank", bank)}  # other namespace: kept


def test_prune_needs_a_criterion_and_a_readable_age(cli, bank):
    assert "needs a criterion" in cli.fails("cases", "prune", "--namespace", "acme", "--yes", "--bank", bank)
    assert "duration '3 months'" in cli.fails("cases", "prune", "--older-than", "3 months", "--bank", bank)
    assert "go together" in cli.fails("cases", "prune", "--max-usefulness", "0", "--bank", bank)
