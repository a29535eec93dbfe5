"""Turning an edit (a document from $EDITOR, or `--set field=value` pairs) into `CaseBank.update` fields."""

import json
from typing import Any

from memento.case import Case, validate_case
from memento.cli.options import parse_assignment, parse_value
from memento.errors import ValidationError

EDIT_FORMATS = ("json", "yaml")
READ_ONLY = ("id", "updated_at")


def render(case: Case, fmt: str) -> str:
    """The case as the text the editor shows."""
    data = case.model_dump(mode="json")
    if fmt == "yaml":
        import yaml

        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def parse_document(text: str, fmt: str) -> Any:
    """The edited text as data; ValidationError naming the format and the position when it does not parse."""
    if fmt == "yaml":
        import yaml

        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ValidationError(f"the edited case is not valid YAML ({' '.join(str(exc).split())}); nothing was changed") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationError(f"the edited case is not valid JSON ({exc}); nothing was changed") from None


def changes_from_document(old: Case, document: Any) -> dict[str, Any]:
    """The fields an edited document changes, after validating it as a whole case.

    A field left out of the document keeps its value; the id cannot change.
    """
    if not isinstance(document, dict):
        raise ValidationError(f"the edited case must be a mapping of fields, got {type(document).__name__}; nothing was changed")
    if document.get("id", old.id) != old.id:
        raise ValidationError(f"the case id cannot change (from {old.id!r} to {document['id']!r}); "
                              f"add a new case and remove this one instead; nothing was changed")
    current = old.model_dump(mode="json")
    new = validate_case({**current, **document}, where="the edited case: ").model_dump(mode="json")
    return {key: new[key] for key in new if key not in READ_ONLY and new[key] != current[key]}


def changes_from_assignments(old: Case, assignments: list[str]) -> dict[str, Any]:
    """`--set field=value` and `--set metadata.key=value` as update fields, validated together.

    Values are read as JSON when they parse, except for text fields (task, answer), which take
    the text as it is, so `--set answer=42` stores the string "42".
    """
    current = old.model_dump(mode="json")
    changed: dict[str, Any] = {}
    for assignment in assignments:
        path, raw = parse_assignment(assignment, "--set")
        field, *keys = path.split(".")
        if field not in Case.model_fields or field in READ_ONLY:
            editable = sorted(set(Case.model_fields) - set(READ_ONLY))
            raise ValidationError(f"--set {path}: {field!r} is not an editable case field; choose one of {editable}")
        value = raw if _is_text(field) and not keys else parse_value(raw)
        if keys:
            container = changed.setdefault(field, json.loads(json.dumps(current[field])))
            value = _set_nested(container, keys, value, path)
        changed[field] = value
    validate_case({**current, **changed}, where="--set: ")
    return changed


def _is_text(field: str) -> bool:
    return Case.model_fields[field].annotation is str


def _set_nested(container: Any, keys: list[str], value: Any, path: str) -> Any:
    """Set container[k1][k2]... = value, creating mappings on the way; returns the container."""
    if not isinstance(container, dict):
        raise ValidationError(f"--set {path}: {path.split('.')[0]!r} is not a mapping, so it has no keys to set")
    node = container
    for key in keys[:-1]:
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise ValidationError(f"--set {path}: {key!r} holds {child!r}, not a mapping")
        node = child
    node[keys[-1]] = value
    return container

