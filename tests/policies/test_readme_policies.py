"""The README's policy examples run as written, and the `policy show` output it prints is today's config."""

import json
import re
from dataclasses import asdict
from pathlib import Path

import pytest

from memento.policies import POLICY_CLASSES

README = Path(__file__).resolve().parents[2] / "README.md"


def section(title: str) -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end >= 0 else None]


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)


def test_the_policy_section_has_examples():
    assert python_blocks(section("Case-selection policies"))


@pytest.mark.parametrize("number", range(len(python_blocks(section("Case-selection policies")))))
def test_the_policy_examples_run_as_written(tmp_path, monkeypatch, number):
    monkeypatch.chdir(tmp_path)
    code = python_blocks(section("Case-selection policies"))[number]
    namespace: dict = {}
    exec(compile(code, f"README.md policy example {number + 1}", "exec"), namespace)
    if "bank" in namespace:
        namespace["bank"].close()


def test_the_policy_show_output_prints_the_current_defaults():
    """The README once printed min_replay 2 (the policy it showed was built with 2) while the default is 8."""
    text = README.read_text(encoding="utf-8")
    shown = text[text.index("$ memento policy show policy.pt\n") + len("$ memento policy show policy.pt\n"):]
    shown = json.JSONDecoder().raw_decode(shown)[0]
    cls = POLICY_CLASSES[shown["kind"]]
    assert shown["config"] == asdict(cls.config_class()), (
        "the README's `memento policy show` output no longer matches the config's defaults; regenerate it "
        "with a policy made by make_policy(kind, bank) and paste the real output")
