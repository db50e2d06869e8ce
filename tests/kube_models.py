"""Checking Kubernetes objects (as JSON-like dicts) against the official client's models,
which are generated from the API's OpenAPI schema: every key must be a field of its
model (a misspelt `imagePullPolcy` is an error, where `from_dict` would drop it
silently), every value of the field's type, and the model must accept the whole
object (required fields, strict types).

Shared by tests/unit/providers (the pods and secrets the provider builds, and what the
fake API server accepts) and tests/unit/deploy (deploy/kubernetes/*.yaml).
"""

from __future__ import annotations

import re
from typing import Any

from kubernetes import client

#: (apiVersion, kind) -> the client's model of it: the kinds deploy/kubernetes ships.
MODELS: dict[tuple[str, str], str] = {
    ("v1", "Namespace"): "V1Namespace",
    ("v1", "ServiceAccount"): "V1ServiceAccount",
    ("v1", "Service"): "V1Service",
    ("v1", "ConfigMap"): "V1ConfigMap",
    ("v1", "Secret"): "V1Secret",
    ("v1", "Pod"): "V1Pod",
    ("apps/v1", "Deployment"): "V1Deployment",
    ("rbac.authorization.k8s.io/v1", "Role"): "V1Role",
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): "V1RoleBinding",
    ("policy/v1", "PodDisruptionBudget"): "V1PodDisruptionBudget",
}

_LIST = re.compile(r"^(?:List\[|list\[)(.+)\]$")
_DICT = re.compile(r"^(?:Dict\[str, |dict\(str, )(.+)[\])]$")
_PRIMITIVES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
    "datetime": (str,),
    "date": (str,),
    "bytearray": (str,),
}


def schema_errors(data: Any, type_name: str, path: str = "") -> list[str]:
    """Where `data` does not fit the client's type `type_name` ("V1Pod",
    "List[V1EnvVar]", "str"...): one "path: problem" per mistake."""
    where = path or "(top)"
    if (match := _LIST.match(type_name)) is not None:
        if not isinstance(data, list):
            return [f"{where}: expected a list, got {type(data).__name__}"]
        return [
            e for i, item in enumerate(data) for e in schema_errors(item, match[1], f"{path}[{i}]")
        ]
    if (match := _DICT.match(type_name)) is not None:
        if not isinstance(data, dict):
            return [f"{where}: expected a mapping, got {type(data).__name__}"]
        return [e for k, v in data.items() for e in schema_errors(v, match[1], f"{path}.{k}")]
    if type_name == "object":  # IntOrString, free-form: anything
        return []
    if type_name in _PRIMITIVES:
        wanted = _PRIMITIVES[type_name]
        if isinstance(data, bool) and bool not in wanted:
            return [f"{where}: expected {type_name}, got a boolean"]
        if not isinstance(data, wanted):
            return [f"{where}: expected {type_name}, got {type(data).__name__} {data!r}"]
        return []
    model = getattr(client, type_name)
    if not isinstance(data, dict):
        return [f"{where}: expected a {type_name} mapping, got {type(data).__name__}"]
    json_to_attr = {json_key: attr for attr, json_key in model.attribute_map.items()}
    errors = []
    for key, value in data.items():
        attr = json_to_attr.get(key)
        if attr is None:
            errors.append(f"{path}.{key}: not a field of {type_name}".lstrip("."))
        elif value is not None:
            errors += schema_errors(value, model.openapi_types[attr], f"{path}.{key}".lstrip("."))
    return errors


def model_for(obj: dict[str, Any]) -> str:
    key = (str(obj.get("apiVersion")), str(obj.get("kind")))
    if key not in MODELS:
        raise AssertionError(f"no client model known for {key}")
    return MODELS[key]


def validate(obj: dict[str, Any], type_name: str | None = None) -> Any:
    """`obj` as the client's model; AssertionError listing every key or value that does
    not fit the schema, or what the model itself refuses (a required field missing)."""
    type_name = type_name or model_for(obj)
    errors = schema_errors(obj, type_name)
    assert not errors, f"{type_name} does not fit the API schema:\n  " + "\n  ".join(errors)
    model = getattr(client, type_name)
    if hasattr(model, "from_dict"):  # the pydantic models (kubernetes >= 35)
        return model.from_dict(obj)
    # The older generated models load through the client's deserializer.
    return client.ApiClient()._ApiClient__deserialize(obj, type_name)  # type: ignore[attr-defined]


def serialize(model: Any) -> dict[str, Any]:
    """What the client sends for `model` (the JSON body of its request)."""
    body = client.ApiClient().sanitize_for_serialization(model)
    assert isinstance(body, dict)
    return body
