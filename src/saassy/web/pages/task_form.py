"""A task type's input form, generated from its JSON Schema, and the form's values back as input.

Each top-level property becomes a field named `input.<property>` (the name admission's errors
give, so an error lands beside its field). Strings, numbers, integers, booleans, enums and arrays
of scalars get their own inputs; anything else is a JSON textarea for that property. A string
property with `"format": "code"` is edited in a monospace code editor. A schema without
properties is one JSON textarea for the whole input (`input`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

Widget = Literal["text", "code", "number", "integer", "checkbox", "select", "lines", "json"]
SCALARS = {"string", "number", "integer", "boolean"}
WHOLE_INPUT = "input"


@dataclass(frozen=True)
class InputField:
    name: str  # the form field: "input.<property>", or "input" for the whole input as JSON
    label: str
    widget: Widget
    required: bool = False
    help: str = ""
    default: Any = None
    choices: tuple[Any, ...] = ()
    item_type: str = "string"  # for "lines": the type of each line
    attrs: dict[str, Any] = field(default_factory=dict)

    def shown(self, value: Any) -> str:
        """A value as the field shows it (a default, or what the program got)."""
        if value is None:
            return ""
        if self.widget == "lines" and isinstance(value, list):
            return "\n".join(str(item) for item in value)
        if self.widget == "json":
            return json.dumps(value, indent=2, ensure_ascii=False)
        if self.widget == "checkbox":
            return "true" if value is True else ""
        return str(value)


def _type_of(schema: dict[str, Any]) -> str | None:
    kind = schema.get("type")
    if isinstance(kind, list):
        named = [k for k in kind if k != "null"]
        return named[0] if len(named) == 1 else None
    return kind if isinstance(kind, str) else None


def _field_for(name: str, schema: Any, required: bool) -> InputField:
    label = name.replace("_", " ").capitalize()
    if not isinstance(schema, dict):
        return InputField(f"input.{name}", label, "json", required)
    label = str(schema.get("title") or label)
    help_text = str(schema.get("description") or "")
    common: dict[str, Any] = {"required": required, "help": help_text}
    common["default"] = schema.get("default")
    kind = _type_of(schema)
    if isinstance(schema.get("enum"), list) and all(
        isinstance(v, str | int | float | bool) or v is None for v in schema["enum"]
    ):
        return InputField(f"input.{name}", label, "select", choices=tuple(schema["enum"]), **common)
    attrs: dict[str, Any] = {}
    if kind == "string":
        code = schema.get("format") == "code"
        for key, attr in (("minLength", "minlength"), ("maxLength", "maxlength")):
            if isinstance(schema.get(key), int):
                attrs[attr] = schema[key]
        widget: Widget = "code" if code else "text"
        return InputField(f"input.{name}", label, widget, attrs=attrs, **common)
    if kind in ("number", "integer"):
        for key, attr in (("minimum", "min"), ("maximum", "max")):
            if isinstance(schema.get(key), int | float):
                attrs[attr] = schema[key]
        attrs["step"] = "1" if kind == "integer" else "any"
        return InputField(f"input.{name}", label, kind, attrs=attrs, **common)  # type: ignore[arg-type]
    if kind == "boolean":
        return InputField(f"input.{name}", label, "checkbox", **common)
    if kind == "array":
        items = schema.get("items")
        item_type = _type_of(items) if isinstance(items, dict) else None
        if item_type in SCALARS and not (isinstance(items, dict) and "enum" in items):
            hint = "One item per line."
            common["help"] = f"{help_text} ({hint})" if help_text else hint
            return InputField(f"input.{name}", label, "lines", item_type=item_type, **common)
    return InputField(f"input.{name}", label, "json", **common)


def input_fields(schema: dict[str, Any]) -> list[InputField]:
    """The form's fields for a task type's input schema, in the schema's order."""
    properties = schema.get("properties")
    if _type_of(schema) != "object" or not isinstance(properties, dict) or not properties:
        return [
            InputField(
                WHOLE_INPUT,
                "Input (JSON)",
                "json",
                required=True,
                help="The task's input as a JSON document.",
                default={},
            )
        ]
    required = set(schema.get("required") or [])
    return [_field_for(name, sub, name in required) for name, sub in properties.items()]


def _scalar(text: str, kind: str) -> Any:
    if kind == "integer":
        try:
            return int(text)
        except ValueError:
            raise ValueError("Enter a whole number.") from None
    if kind == "number":
        try:
            number = float(text)
        except ValueError:
            raise ValueError("Enter a number.") from None
        if number != number or number in (float("inf"), float("-inf")):
            raise ValueError("Enter a finite number.")
        return int(number) if number.is_integer() and "." not in text else number
    if kind == "boolean":
        if text.lower() in ("true", "yes", "1"):
            return True
        if text.lower() in ("false", "no", "0"):
            return False
        raise ValueError("Enter true or false.")
    return text


def input_from_form(fields: list[InputField], values: dict[str, str]) -> tuple[Any, dict[str, str]]:
    """The task's input from the form's values, and an error per field that cannot be read.

    Empty optional fields are left out (the program sees the schema's default, if any); a
    required one is left for the schema's own check to name.
    """
    errors: dict[str, str] = {}
    if len(fields) == 1 and fields[0].name == WHOLE_INPUT:
        text = values.get(WHOLE_INPUT, "").strip() or "{}"
        try:
            return json.loads(text), errors
        except ValueError as exc:
            return None, {WHOLE_INPUT: f"Not valid JSON: {exc}."}
    result: dict[str, Any] = {}
    for spec in fields:
        prop = spec.name.removeprefix("input.")
        raw = values.get(spec.name)
        if spec.widget == "checkbox":
            if raw is not None or spec.required:
                result[prop] = raw is not None
            continue
        if raw is None or (raw.strip() == "" and spec.widget != "code"):
            continue
        if spec.widget == "code" and raw == "":
            continue
        try:
            if spec.widget in ("text", "code"):
                # Browsers send CRLF line ends in a textarea; programs expect \n.
                result[prop] = raw.replace("\r\n", "\n") if spec.widget == "code" else raw
            elif spec.widget in ("number", "integer"):
                result[prop] = _scalar(raw.strip(), spec.widget)
            elif spec.widget == "select":
                result[prop] = _choice(spec, raw)
            elif spec.widget == "lines":
                lines = [line for line in raw.replace("\r\n", "\n").split("\n") if line != ""]
                result[prop] = [_scalar(line.strip(), spec.item_type) for line in lines]
            else:
                result[prop] = json.loads(raw)
        except ValueError as exc:
            errors[spec.name] = str(exc) if spec.widget != "json" else f"Not valid JSON: {exc}."
    return result, errors


def _choice(spec: InputField, raw: str) -> Any:
    for choice in spec.choices:
        if _choice_value(choice) == raw:
            return choice
    raise ValueError("Choose one of the listed values.")


def _choice_value(choice: Any) -> str:
    """An enum member as an <option value> (JSON, so 1 and "1" stay apart)."""
    return json.dumps(choice)


def form_values_of(fields: list[InputField], value: Any) -> dict[str, str]:
    """A task's input as the form's values (to prefill a re-run or show it again)."""
    if len(fields) == 1 and fields[0].name == WHOLE_INPUT:
        return {WHOLE_INPUT: fields[0].shown(value)}
    if not isinstance(value, dict):
        return {}
    shown: dict[str, str] = {}
    for spec in fields:
        prop = spec.name.removeprefix("input.")
        if prop in value:
            item = value[prop]
            shown[spec.name] = _choice_value(item) if spec.widget == "select" else spec.shown(item)
    return shown


def default_values(fields: list[InputField]) -> dict[str, str]:
    return {
        spec.name: _choice_value(spec.default)
        if spec.widget == "select"
        else spec.shown(spec.default)
        for spec in fields
        if spec.default is not None
    }


choice_value = _choice_value
