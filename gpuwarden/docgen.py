"""Generate docs/configuration.md from the config schema, so the reference can never drift from the code.

Every key, its type, its default and its description come from the pydantic models (`Field(description=)`).
`gpuwarden config-docs > docs/configuration.md` rewrites it; a test fails when the committed file is stale.
"""

from __future__ import annotations

import json
import types
import typing
from typing import Any, TypeGuard

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from gpuwarden.config import AgentConfig

HEADER = """# Configuration reference

gpuwarden reads one YAML file (`gpuwarden agent --config FILE`; without a file the defaults below apply).
Every key is optional. Unknown keys are errors. `gpuwarden check-config FILE` prints `OK` or one line per
problem naming the key path (`collectors.node.interval: must be > 0`) and exits 78; the agent refuses to
start on such a file the same way, and on SIGHUP keeps its running config (and sets
`gpuwarden_config_last_reload_successful` to 0). `examples/agent.yaml` is a complete, tested example.

What the file may hold: plain YAML of at most 1 MiB in UTF-8; no tags (`!!python/...`, `!!float`, custom
ones), no key given twice in one mapping, at most 32 levels of nesting, anchors and aliases only while
they expand to fewer than 100,000 values. Numbers are finite (no `.inf`, `.nan`) and between -1e9 and 1e9
(integers: 2**63). Files the agent opens at start (`agent.tls.*`) must exist and be readable when the
config is checked, and the certificate must load with its key.

This file is generated from the schema by `gpuwarden config-docs`; edit the descriptions in the code.
"""


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:  # a validated type (a readable file, an address) documents as its base
        return _type_name(args[0])
    if origin is typing.Literal:
        return " \\| ".join(json.dumps(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in args)
    if origin in (list, tuple, set):
        return f"list of {_type_name(args[0])}" if args else "list"
    if origin is dict:
        return f"mapping of {_type_name(args[0])} to {_type_name(args[1])}"
    if annotation is type(None):
        return "null"
    return getattr(annotation, "__name__", str(annotation))


def _default(field: FieldInfo) -> str:
    if field.default_factory is not None:
        value = field.default_factory()  # type: ignore[call-arg]
    elif field.default is PydanticUndefined:
        return "required"
    else:
        value = field.default
    return "`" + json.dumps(value, default=_plain).replace("|", "\\|") + "`"


def _plain(value: Any) -> Any:
    """A model in a default (a `disk_paths` entry) as the mapping one would write in YAML."""
    return value.model_dump(exclude_none=True) if isinstance(value, BaseModel) else str(value)


def _constraints(field: FieldInfo) -> str:
    out = []
    for meta in field.metadata:
        for attr, sign in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<=")):
            bound = getattr(meta, attr, None)
            if bound is not None:
                out.append(f"{sign} {bound}")
    return f" ({', '.join(out)})" if out else ""


def _is_model(annotation: Any) -> TypeGuard[type[BaseModel]]:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _list_item_model(annotation: Any) -> type[BaseModel] | None:
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (list, tuple) and args and _is_model(args[0]):
        return args[0]
    return None


def _section(model: type[BaseModel], prefix: str, out: list[str]) -> None:
    rows: list[str] = []
    subsections: list[tuple[type[BaseModel], str]] = []
    for name, field in model.model_fields.items():
        path = f"{prefix}.{name}" if prefix else name
        if _is_model(field.annotation):
            subsections.append((field.annotation, path))
            continue
        item = _list_item_model(field.annotation)
        if item is not None:
            subsections.append((item, f"{path}[]"))
        doc = (field.description or "").replace("|", "\\|")
        rows.append(
            f"| `{path}` | {_type_name(field.annotation)}{_constraints(field)} | {_default(field)} | {doc} |"
        )
    if rows:
        title = prefix or "top level"
        out.append(f"\n## `{title}`\n")
        if model.__doc__ and model.__doc__ != BaseModel.__doc__:
            out.append(" ".join(model.__doc__.split()) + "\n")
        out.append("| key | type | default | description |\n|---|---|---|---|")
        out.extend(rows)
    for sub, path in subsections:
        _section(sub, path, out)


def render() -> str:
    out = [HEADER]
    _section(AgentConfig, "", out)
    return "\n".join(out) + "\n"
