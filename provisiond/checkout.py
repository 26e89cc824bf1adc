"""Checkout fields: what the client fills in at order time (a PHP version, a first mailbox).

A panel declares some in ``panel.yaml`` (``checkout:``), a product may add its own; both are
field definitions as ``credentials:`` has them (``panels.checkout_fields``) and merge into the
product's schema. A product field named like one of its panel's is refused: one key names one
thing. An order's values are checked against that schema (``fields.<name>`` names what is
wrong), get the defaults, are stored on the service and reach playbooks as ``account.fields``,
as data (never templated). ``json_schema`` is what a billing system renders its form from.
"""

from __future__ import annotations

import dataclasses
import unicodedata
from typing import Any, Mapping

from provisiond.errors import PanelError, ValidationError
from provisiond.models import Product
from provisiond.panels import Field, Panel, check_fields, checkout_fields

MAX_TEXT = 255  # what a panel's form field or a database column takes, at most
JSON_TYPES = {"str": "string", "int": "integer", "bool": "boolean"}


def product_spec(panel: Panel, raw: Any) -> list[dict]:
    """A product's own checkout fields as an admin gave them ({name: definition}), checked,
    in the form stored on the product; ValidationError names ``checkout.<name>[.<key>]``."""
    try:
        fields = checkout_fields("checkout", raw)
    except PanelError as exc:
        where, _, message = str(exc).partition(": ")
        raise ValidationError(where, message) from None
    for field in fields:
        if any(f.name == field.name for f in panel.checkout):
            raise ValidationError(f"checkout.{field.name}", _same_name(panel, field.name))
    return [_stored(f) for f in fields]


def _same_name(panel: Panel, name: str) -> str:
    return (f"panel {panel.id} declares a checkout field {name} already (panel.yaml); a product field "
            "of the same name would make one key name two things: choose another name")


UNSET = {f.name: f.default for f in dataclasses.fields(Field)}


def _stored(field: Field) -> dict:
    values = {k: v for k, v in dataclasses.asdict(field).items()
              if k not in UNSET or v != UNSET[k] or type(v) is not type(UNSET[k])}
    if "choices" in values:
        values["choices"] = list(values["choices"])
    return values | {"type": field.type}


def fields_of(panel: Panel, product: Product) -> tuple[Field, ...]:
    """The product's checkout schema: its panel's fields, then its own."""
    own = checkout_fields(f"product {product.name}: checkout",
                          {spec["name"]: {k: v for k, v in spec.items() if k != "name"}
                           for spec in product.checkout or []})
    for field in own:
        if any(f.name == field.name for f in panel.checkout):
            raise PanelError(f"product {product.name}: checkout.{field.name}: {_same_name(panel, field.name)}")
    return panel.checkout + own


def check_order(panel: Panel, product: Product, given: Mapping[str, Any] | None) -> dict:
    """An order's checkout values, checked against the product's schema, defaults filled in."""
    if given is not None and not isinstance(given, Mapping):
        raise ValidationError("fields", "must be an object of field: value")
    schema = fields_of(panel, product)
    known = {f.name for f in schema}
    # A field left blank (a form's empty input, `--field mailbox=`) is one not given.
    given = {k: v for k, v in (given or {}).items() if v != "" or k not in known}
    for name, value in given.items():  # before any pattern runs on it
        if name in known and isinstance(value, str):
            _plain_text(f"fields.{name}", value)
    return check_fields("fields", schema, given, f"product {product.name} has no such checkout field")


def sample(panel: Panel) -> dict:
    """Values for the panel's required checkout fields without a default, for a throwaway order
    (``panels try``, ``panels verify``): the first choice, the least number, false, or "sample"."""
    values = {}
    for field in panel.checkout:
        if field.required and field.default is None:
            values[field.name] = (field.choices[0] if field.choices else False if field.type == "bool"
                                  else (field.min or 0) if field.type == "int" else "sample")
    return values


def _plain_text(where: str, value: str) -> None:
    # A value travels to panels and into forms as one line.
    if len(value) > MAX_TEXT:
        raise ValidationError(where, f"must be at most {MAX_TEXT} characters")
    control = next((c for c in value if unicodedata.category(c) == "Cc"), None)
    if control is not None:
        raise ValidationError(where, f"contains a control character (U+{ord(control):04X})")


def json_schema(panel: Panel, product: Product) -> dict:
    """The product's checkout schema as JSON Schema: an order's ``fields`` object. Each property
    says who declared it (``x-declared-by``: panel or product; ``product edit --checkout``
    replaces the product's)."""
    properties, fields = {}, fields_of(panel, product)
    for field in fields:
        prop: dict[str, Any] = {"type": JSON_TYPES[field.type], "title": field.label or field.name,
                                "x-declared-by": "panel" if field in panel.checkout else "product"}
        if field.pattern:
            prop["pattern"] = f"^(?:{field.pattern})$"  # checked whole, as re.fullmatch does
        if field.choices:
            prop["enum"] = list(field.choices)
        if field.min is not None:
            prop["minimum"] = field.min
        if field.max is not None:
            prop["maximum"] = field.max
        if field.type == "str":
            prop["maxLength"] = MAX_TEXT
        if field.default is not None:
            prop["default"] = field.default
        properties[field.name] = prop
    required = [f.name for f in fields if f.required and f.default is None]
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}
