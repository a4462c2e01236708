"""Generate CustomResourceDefinitions from the pydantic models: the one definition of each kind.

pydantic writes JSON Schema (draft 2020-12, with ``$defs``); Kubernetes wants a structural
OpenAPI v3 schema. ``structural`` inlines references, unwraps ``Optional``, drops what the
API server refuses (``title``, ``additionalProperties: false``, ``const``) and keeps
descriptions, enums, ranges, patterns and the CEL rules the models declare.
"""

from __future__ import annotations

import copy
from typing import Any

import yaml

from .v1alpha1 import GROUP, KINDS, VERSION, Resource

CATEGORIES = ["lathe"]
_DROP = {"title", "discriminator"}


def structural(node: Any, defs: dict[str, Any]) -> Any:
    """Turn one pydantic JSON Schema node into a structural OpenAPI v3 node."""
    if isinstance(node, list):
        return [structural(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = copy.deepcopy(defs[node["$ref"].rsplit("/", 1)[-1]])
        # Field-level keys (description, CEL rules) win over the referenced type's.
        extra = {k: v for k, v in node.items() if k != "$ref"}
        rules = target.get("x-kubernetes-validations", []) + extra.pop("x-kubernetes-validations", [])
        target.update(extra)
        if rules:
            target["x-kubernetes-validations"] = rules
        return structural(target, defs)
    node = dict(node)
    for variants in ("anyOf", "oneOf"):
        if variants in node:
            options = [o for o in node.pop(variants) if o.get("type") != "null"]
            if len(options) != 1:
                raise ValueError(f"unions are not structural: {options}")
            outer = {k: v for k, v in node.items() if k != "default" or v is not None}
            inner = structural(options[0], defs)
            inner_rules = inner.get("x-kubernetes-validations", [])
            inner.update(outer)
            if inner_rules or "x-kubernetes-validations" in outer:
                inner["x-kubernetes-validations"] = inner_rules + outer.get("x-kubernetes-validations", [])
            node = inner
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROP:
            continue
        if key == "default" and (
            value is None
            or isinstance(value, dict)
            or value == []
            or (isinstance(value, list) and not all(isinstance(v, (int, str)) for v in value))
        ):
            continue  # scalar and scalar-list defaults are deliberate; empty ones the server would write everywhere
        if key == "const":
            out["enum"] = [value]
        elif key == "exclusiveMinimum" and not isinstance(value, bool):
            out["minimum"], out["exclusiveMinimum"] = value, True
        elif key == "exclusiveMaximum" and not isinstance(value, bool):
            out["maximum"], out["exclusiveMaximum"] = value, True
        elif key == "properties":
            out[key] = {name: structural(schema, defs) for name, schema in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            out[key] = structural(value, defs)
        else:
            out[key] = copy.deepcopy(value)  # enum, required, CEL rules, list-map keys: data, not schemas
    if out.get("additionalProperties") is False:
        del out["additionalProperties"]
    if "properties" in out or out.get("type") == "object":
        out["type"] = "object"
        if "properties" not in out and "additionalProperties" not in out:
            out["x-kubernetes-preserve-unknown-fields"] = True
        elif out.get("additionalProperties") is True or out.get("additionalProperties") == {}:
            del out["additionalProperties"]
            out["x-kubernetes-preserve-unknown-fields"] = True
    if "type" not in out and "x-kubernetes-preserve-unknown-fields" not in out and "enum" not in out:
        out["x-kubernetes-preserve-unknown-fields"] = True  # typing.Any
    return out


def _kind_schema(model: type[Resource], part: str) -> dict[str, Any]:
    field = model.model_fields[part]
    annotation = field.annotation
    assert isinstance(annotation, type)
    schema = annotation.model_json_schema(by_alias=True, mode="validation", ref_template="#/$defs/{model}")
    defs = schema.pop("$defs", {})
    result = structural(schema, defs)
    result["description"] = field.description or result.get("description", "")
    return result


def crd(model: type[Resource]) -> dict[str, Any]:
    """The CustomResourceDefinition of one kind."""
    spec = _kind_schema(model, "spec")
    status = _kind_schema(model, "status")
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{model.plural}.{GROUP}",
            "labels": {"app.kubernetes.io/part-of": "lathe"},
        },
        "spec": {
            "group": GROUP,
            "names": {
                "kind": model.kind_name,
                "listKind": f"{model.kind_name}List",
                "plural": model.plural,
                "singular": model.kind_name.lower(),
                "shortNames": model.short_names,
                "categories": CATEGORIES,
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": model.printer_columns,
                    "schema": {
                        "openAPIV3Schema": {
                            "description": (model.__doc__ or "").strip(),
                            "type": "object",
                            "required": ["spec"],
                            "x-kubernetes-validations": model.object_rules,
                            "properties": {
                                "apiVersion": {"type": "string", "description": "lathe.dev/v1alpha1"},
                                "kind": {"type": "string", "description": model.kind_name},
                                "metadata": {"type": "object"},
                                "spec": spec,
                                "status": status,
                            },
                        }
                    },
                }
            ],
        },
    }


def render(model: type[Resource]) -> str:
    """The YAML text checked in under charts/lathe/crds/ and manifests/crds/."""
    header = "# Generated from lathe_operator.api.v1alpha1 by `make crds`; do not edit.\n"
    return header + yaml.safe_dump(crd(model), sort_keys=False, width=120)


def file_name(model: type[Resource]) -> str:
    return f"{GROUP}_{model.plural}.yaml"


def all_crds() -> dict[str, str]:
    """File name -> YAML text for every kind."""
    return {file_name(model): render(model) for model in KINDS}
