"""EvalConfig: one object from Python, YAML or JSON, checked on the way in, fingerprinted for resume."""

import pydantic
import pytest

from memento.evals.config import EvalConfig, TaskSpec, load_config
from memento.errors import ValidationError


def test_yaml_and_json_files_give_the_same_config(tmp_path):
    yaml_file = tmp_path / "eval.yaml"
    yaml_file.write_text("protocol: split\ntasks: {source: fictional, limit: 6, options: {split: train}}\n"
                         "test_tasks: {source: fictional, limit: 3, options: {split: test}}\n"
                         "arms: [none, similarity]\niterations: 2\n")
    config = load_config(yaml_file)
    json_file = tmp_path / "eval.json"
    json_file.write_text(config.model_dump_json())

    assert load_config(json_file) == config
    assert config.test_tasks.options == {"split": "test"} and config.arms == ["none", "similarity"]


def test_fingerprint_ignores_where_and_how_fast_but_not_what():
    base = EvalConfig(tasks=TaskSpec(limit=4))
    assert base.fingerprint() == base.model_copy(update={"out_dir": "elsewhere", "concurrency": 9}).fingerprint()
    assert base.fingerprint() != EvalConfig(tasks=TaskSpec(limit=5)).fingerprint()


@pytest.mark.parametrize("settings, rule", [
    ({"arms": ["none", "psychic"]}, "distinct names among"),
    ({"protocol": "split"}, "needs test_tasks"),
    ({"policy_options": {"similarity": {"k": 2}}}, "policy arms among"),
    ({"iterations": 0}, "iterations and attempts"),
    ({"tasks": {"source": "nowhere"}}, "is not one of"),
])
def test_bad_settings_name_the_rule(settings, rule):
    with pytest.raises(pydantic.ValidationError, match=rule):
        EvalConfig(**settings)


def test_a_bad_file_is_a_validation_error_naming_it(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("iterations: -1\n")
    with pytest.raises(ValidationError, match="bad.yaml"):
        load_config(bad)
    with pytest.raises(ValidationError, match="does not exist"):
        load_config(tmp_path / "missing.json")
