"""Hostile arguments through the real `memento` entry point: exit 0, or one `Error:` line and exit 1 (2 for usage)."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.hostile.conftest import assert_user_error, export
from tests.hostile.strategies import SQL_PAYLOADS, weird_text

pytestmark = pytest.mark.hostile

arg = st.one_of(weird_text.filter(lambda t: "\x00" not in t), st.sampled_from(SQL_PAYLOADS + ["-1", "0", "1e309", "nan",
                                                                                             "9" * 30, "--", "-"]))
pair = st.builds(lambda k, v: f"{k}={v}", arg, arg) | arg
read_command = st.one_of(
    st.tuples(st.just("ls"), st.sampled_from(["--namespace", "--namespace-prefix", "--limit", "--offset", "--order-by",
                                              "--min-reward", "--since", "--text", "--dataset"]), arg),
    st.tuples(st.just("ls"), st.just("--where"), pair),
    st.tuples(st.just("search"), arg, st.sampled_from(["--k", "--namespace", "--namespace-prefix"]), arg),
    st.tuples(st.just("search"), arg, st.just("--where"), pair),
    st.tuples(st.just("show"), arg),
    st.tuples(st.just("count"), st.sampled_from(["--namespace", "--where"]), pair),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(command=read_command)
def test_a_read_command_with_hostile_arguments_answers_or_fails_cleanly(bank, cli, command):
    before = export(bank)
    result = cli("cases", *command, "--bank", bank.path)
    if result.exit_code != 0:
        assert_user_error(result, codes=(1, 2))
    assert export(bank) == before


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(where=pair, flag=st.sampled_from(["--where", "--text", "--dataset", "--min-reward"]))
def test_a_hostile_rm_in_an_empty_namespace_removes_nothing(bank, cli, where, flag):
    before = export(bank)
    result = cli("cases", "rm", "--namespace", "nobody", flag, where, "--yes", "--bank", bank.path)
    if result.exit_code != 0:
        assert_user_error(result, codes=(1, 2))
    assert export(bank) == before
