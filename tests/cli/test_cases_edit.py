"""`memento cases edit`: the $EDITOR flow with a scripted editor, and `--set`."""

import shlex
import sys
import textwrap


def scripted_editor(folder, name, body):
    """An $EDITOR that runs `body` on the file's text (`text`) and saves the result, as a person would."""
    script = folder / f"{name}.py"
    script.write_text(textwrap.dedent("""\
        import sys
        path = sys.argv[1]
        text = open(path, encoding="utf-8").read()
        {body}
        open(path, "w", encoding="utf-8").write(text)
    """).format(body=body))
    return {"EDITOR": f"{shlex.quote(sys.executable)} {shlex.quote(str(script))}", "VISUAL": None}


def test_editor_changes_the_answer_as_json(cli, bank):
    editor = scripted_editor(cli.folder, "fix_answer", 'text = text.replace(\'"answer": "Bo Rand"\', \'"answer": "Ada Vell"\')')
    edited = cli.ok("cases", "edit", "acme-2", "--bank", bank, env=editor)
    assert edited["answer"] == "Ada Vell"
    assert cli.ok("cases", "show", "acme-2", "--bank", bank)["answer"] == "Ada Vell"


def test_editor_yaml_task_change_is_re_embedded(cli, bank):
    editor = scripted_editor(cli.folder, "new_task", "text = text.replace('task: Who founded the Acme company?', "
                                                     "'task: What colour is the Globex logo?')")
    cli.ok("cases", "edit", "acme-2", "--format", "yaml", "--bank", bank, env=editor)
    hit = cli.ok("cases", "search", "What colour is the Globex logo?", "-k", "1", "--bank", bank)[0]
    assert hit["id"] == "acme-2" and abs(hit["score"] - 1.0) < 1e-5


def test_editor_closed_without_saving_changes_nothing(cli, bank):
    before = cli.snapshot(bank)
    editor = {"EDITOR": f"{shlex.quote(sys.executable)} -c pass", "VISUAL": None}
    result = cli("cases", "edit", "acme-1", "--bank", bank, env=editor)
    assert result.exit_code == 0 and "unchanged" in result.stderr
    assert cli.snapshot(bank) == before


def test_an_edit_that_makes_the_case_invalid_changes_nothing(cli, bank):
    before = cli.snapshot(bank)
    empty_task = scripted_editor(cli.folder, "empty_task", "text = text.replace('Who founded the Acme company?', ' ')")
    assert "task text is empty" in cli.fails("cases", "edit", "acme-1", "--bank", bank, env=empty_task)
    broken_json = scripted_editor(cli.folder, "broken_json", "text = text[:-5]")
    assert "not valid JSON" in cli.fails("cases", "edit", "acme-1", "--bank", bank, env=broken_json)
    new_id = scripted_editor(cli.folder, "new_id", "text = text.replace('\"acme-1\"', '\"acme-9\"')")
    assert "id cannot change" in cli.fails("cases", "edit", "acme-1", "--bank", bank, env=new_id)
    assert cli.snapshot(bank) == before


def test_set_parses_json_values_nested_metadata_and_keeps_text_fields_text(cli, bank):
    case = cli.ok("cases", "edit", "river-2", "--set", "reward=1", "--set", "answer=105",
                  "--set", "metadata.judge=fixed", "--set", "metadata.review.by=ann", "--set", "namespace=geo/rivers",
                  "--bank", bank)
    assert case["reward"] == 1.0 and case["answer"] == "105" and case["namespace"] == ["geo", "rivers"]
    assert case["metadata"] == {"dataset": "simpleqa", "judge": "fixed", "review": {"by": "ann"}}
    assert cli.ok("cases", "ls", "--namespace", "geo/rivers", "--bank", bank)[0]["id"] == "river-2"


def test_set_errors_change_nothing(cli, bank):
    before = cli.snapshot(bank)
    assert "is not a number" in cli.fails("cases", "edit", "river-2", "--set", "reward=lots", "--bank", bank)
    assert "not an editable case field" in cli.fails("cases", "edit", "river-2", "--set", "colour=red", "--bank", bank)
    assert "not an editable case field" in cli.fails("cases", "edit", "river-2", "--set", "id=x", "--bank", bank)
    assert "not key=value" in cli.fails("cases", "edit", "river-2", "--set", "reward", "--bank", bank)
    assert "not a mapping" in cli.fails("cases", "edit", "river-2", "--set", "answer.x=1", "--bank", bank)
    assert cli.snapshot(bank) == before
