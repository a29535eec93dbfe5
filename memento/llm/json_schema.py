"""Reading a model's JSON reply and checking it against a JSON schema given as a dict.

Pydantic models validate themselves; a plain dict schema is checked here for the subset of
JSON Schema that structured output uses (types, properties, required, additionalProperties,
items, enum, const, bounds, anyOf/oneOf/allOf, local $ref), so the core needs no extra package.
"""

from __future__ import annotations

import json
import re
from typing import Any

from memento.errors import ValidationError

_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)

_TYPE_CHECKS = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


def parse_json_reply(text: str) -> Any:
    """Parse a reply as JSON, tolerating surrounding blanks and a Markdown code fence."""
    stripped = text.strip()
    fenced = _FENCE.match(stripped)
    return json.loads(fenced.group(1) if fenced else stripped)


def schema_problems(value: Any, schema: dict, *, root: dict | None = None, path: str = "$") -> list[str]:
    """Every way `value` breaks `schema`, as 'path: problem' lines; empty when it conforms."""
    root = schema if root is None else root
    if "$ref" in schema:
        return schema_problems(value, _resolve(schema["$ref"], root), root=root, path=path)
    problems: list[str] = []
    expected = schema.get("type")
    if expected is not None:
        types = expected if isinstance(expected, list) else [expected]
        if not any(_TYPE_CHECKS.get(t, lambda v: True)(value) for t in types):
            return [f"{path}: expected {'/'.join(types)}, got {type(value).__name__} {value!r:.60}"]
    if "enum" in schema and value not in schema["enum"]:
        problems.append(f"{path}: {value!r:.60} is not one of {schema['enum']}")
    if "const" in schema and value != schema["const"]:
        problems.append(f"{path}: {value!r:.60} is not {schema['const']!r}")
    problems += _bound_problems(value, schema, path)
    for key in ("anyOf", "oneOf"):
        if key in schema and all(schema_problems(value, s, root=root, path=path) for s in schema[key]):
            problems.append(f"{path}: matches none of the {key} alternatives")
    for sub in schema.get("allOf", []):
        problems += schema_problems(value, sub, root=root, path=path)
    if isinstance(value, dict):
        problems += _object_problems(value, schema, root, path)
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            problems += schema_problems(item, schema["items"], root=root, path=f"{path}[{index}]")
    return problems


def _object_problems(value: dict, schema: dict, root: dict, path: str) -> list[str]:
    properties = schema.get("properties", {})
    problems = [f"{path}: missing required field {name!r}" for name in schema.get("required", []) if name not in value]
    extra = schema.get("additionalProperties", True)
    for name, item in value.items():
        if name in properties:
            problems += schema_problems(item, properties[name], root=root, path=f"{path}.{name}")
        elif extra is False:
            problems.append(f"{path}: field {name!r} is not allowed")
        elif isinstance(extra, dict):
            problems += schema_problems(item, extra, root=root, path=f"{path}.{name}")
    return problems


def _bound_problems(value: Any, schema: dict, path: str) -> list[str]:
    size = len(value) if isinstance(value, (str, list, dict)) else None
    checks = [
        ("minimum", lambda b: _is_number(value) and value < b),
        ("maximum", lambda b: _is_number(value) and value > b),
        ("exclusiveMinimum", lambda b: _is_number(value) and value <= b),
        ("exclusiveMaximum", lambda b: _is_number(value) and value >= b),
        ("minLength", lambda b: isinstance(value, str) and size < b),
        ("maxLength", lambda b: isinstance(value, str) and size > b),
        ("minItems", lambda b: isinstance(value, list) and size < b),
        ("maxItems", lambda b: isinstance(value, list) and size > b),
    ]
    return [f"{path}: breaks {name}={schema[name]}" for name, broken in checks if name in schema and broken(schema[name])]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _resolve(ref: str, root: dict) -> dict:
    if not ref.startswith("#/"):
        raise ValidationError(f"$ref {ref!r} is not local; only refs inside the schema ('#/...') are supported, inline it")
    node: Any = root
    for part in ref[2:].split("/"):
        node = node[part]
    return node
