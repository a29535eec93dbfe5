"""Hostile JSONL lines through `memento cases import`: all lines in, or exit 1 naming the line, with the bank unchanged."""

import json
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.hostile.conftest import assert_user_error, export
from tests.hostile.strategies import any_value, namespace, weird_text

pytestmark = pytest.mark.hostile

json_value = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=10)),
                          lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                  st.dictionaries(st.text(max_size=5), inner, max_size=3)),
                          max_leaves=6)
good_line = st.builds(lambda task, answer, reward: json.dumps({"task": task, "answer": answer, "reward": reward}),
                      st.text(min_size=1, max_size=20).filter(str.strip).filter(lambda t: t.encode("utf-8", "strict")),
                      st.text(max_size=20), st.sampled_from([0.0, 0.5, 1.0]))
hostile_field_line = st.builds(
    lambda fields: json.dumps(fields, default=repr),
    st.fixed_dictionaries({"task": st.one_of(st.just("a task"), weird_text, any_value)},
                          optional={"namespace": namespace, "reward": any_value, "id": weird_text, "metadata": any_value,
                                    "unknown_field": any_value, "embedding": st.one_of(any_value, st.lists(
                                        st.floats(), min_size=63, max_size=65))}))
bad_line = st.one_of(
    json_value.map(json.dumps),
    hostile_field_line,
    weird_text.map(lambda t: t.replace("\n", " ").replace("\r", " ") or "{"),
    st.sampled_from(['{"task": "x\\ud800"}', '{"task": "a"', '[{"task": "a"}]', '{"task": "a"} trailing', "\ufeff{}"]),
)
lines = st.lists(st.one_of(good_line, bad_line), min_size=1, max_size=6)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(lines=lines)
def test_an_import_takes_every_line_or_none_and_names_the_first_bad_one(bank, cli, tmp_path_factory, lines):
    source = tmp_path_factory.mktemp("import") / "cases.jsonl"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8", errors="surrogatepass")
    before, ids_before = export(bank), {c.id for c in bank.iter_cases()}

    result = cli("cases", "import", source, "--bank", bank.path)

    if result.exit_code == 0:
        added = {c.id for c in bank.iter_cases()} - ids_before
        assert len(added) == sum(1 for line in lines if line.strip()), "all lines in"
        bank.delete_many(added)
        return
    line = assert_user_error(result)
    numbered = re.search(r"line (\d+)", line)
    assert numbered or "UTF-8" in line, line
    if numbered:
        assert 1 <= int(numbered.group(1)) <= len(lines)
    assert export(bank) == before, "a refused import adds nothing"
