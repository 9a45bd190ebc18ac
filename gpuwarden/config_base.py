"""What every config model builds on, importing nothing of gpuwarden: the base model, the error, its lines.

Settings modules (a collector's, a playbook's, the fleet's) import this, never `gpuwarden.config`, so the
config can be assembled from registries without an import circle. `section_model` builds a config section
(`collectors`, `remediation.playbooks`) from a registry's settings models.
"""

from __future__ import annotations

import json
import math
import os
import stat
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, field_validator
from pydantic_core import PydanticCustomError

EX_CONFIG = 78  # sysexits.h EX_CONFIG; systemd's RestartPreventExitStatus=78 stops a restart loop on it

# Past these, values only reach the code as OverflowErrors: threading and socket timeouts stop at about
# 9.2e9 s (int64 nanoseconds), timedelta at 8.6e13 s, C integers at 2**63. 1e9 s is 31 years.
MAX_FLOAT = 1e9
MAX_INT = 2**63 - 1


class ConfigError(Exception):
    """One `key.path: reason` line per problem; the CLI prints them and exits 78 (EX_CONFIG)."""

    def __init__(self, problems: list[str]) -> None:
        # One line each, whatever a key or value held (a quoted key may contain a newline).
        self.problems = [p.replace("\r", "\\r").replace("\n", "\\n") for p in problems]
        super().__init__("\n".join(self.problems))


def _within_bounds(value: Any) -> None:
    if isinstance(value, bool):
        return
    if isinstance(value, float) and not math.isfinite(value):
        raise PydanticCustomError("finite_number", "must be a finite number")
    if isinstance(value, float) and abs(value) > MAX_FLOAT:
        raise PydanticCustomError("number_too_large", f"must be between -{MAX_FLOAT:g} and {MAX_FLOAT:g}")
    if isinstance(value, int) and abs(value) > MAX_INT:
        raise PydanticCustomError("number_too_large", "must be between -2**63 and 2**63")
    if isinstance(value, list | tuple | set | frozenset):
        for item in value:
            _within_bounds(item)
    elif isinstance(value, Mapping):
        for item in value.values():
            _within_bounds(item)


class StrictModel(BaseModel):
    """Base for every config model: unknown keys are errors, numbers are finite and of a usable size."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @field_validator("*", mode="after")
    @classmethod
    def _bounded_numbers(cls, value: Any) -> Any:
        _within_bounds(value)
        return value


def section_model(name: str, settings: Mapping[str, type[BaseModel]], doc: str) -> type[StrictModel]:
    """A config section with one key per registered name, each holding that name's own settings model.

    The `collectors` section is `section_model("CollectorsSettings", {name: spec.settings ...})`; the
    remediation engine's `playbooks` section is built the same way from its playbook registry.
    """
    fields: dict[str, Any] = {
        key: (model, Field(default_factory=model)) for key, model in sorted(settings.items())
    }
    model = create_model(name, __base__=StrictModel, **fields)
    model.__doc__ = doc
    return model


def readable_file(path: str) -> str:
    """Validator for a file the agent opens at start (TLS material, tokens): a regular, readable file."""
    try:
        st = os.stat(path)
    except OSError as err:
        raise ValueError(f"cannot read {path}: {err.strerror}") from None
    except ValueError:  # an embedded NUL byte
        raise ValueError(f"not a file name: {path!r}") from None
    if not stat.S_ISREG(st.st_mode):
        raise ValueError(f"{path} is not a regular file")
    if not os.access(path, os.R_OK):
        raise ValueError(f"cannot read {path}: Permission denied")
    return path


def cross_section_error(problems: list[tuple[str, str]]) -> PydanticCustomError:
    """What an `AgentConfig` validator raises for rules that span sections: each problem keeps its key path
    (a model validator's own location is the top level, which names nothing to fix)."""
    return PydanticCustomError("cross_section", "{problems}", {"problems": problems})


# Pydantic's messages, said the way an operator reads them next to a key path.
_MESSAGES = {
    "extra_forbidden": "unknown key",
    "missing": "required key is missing",
    "greater_than": "must be > {gt:g}",
    "greater_than_equal": "must be >= {ge:g}",
    "less_than": "must be < {lt:g}",
    "less_than_equal": "must be <= {le:g}",
    "literal_error": "must be one of {expected}",
    "bool_parsing": "must be true or false",
    "bool_type": "must be true or false",
    "int_parsing": "must be an integer",
    "int_type": "must be an integer",
    "int_from_float": "must be an integer",
    "float_parsing": "must be a number",
    "float_type": "must be a number",
    "finite_number": "must be a finite number",
    "string_type": "must be a string",
    "list_type": "must be a list",
    "dict_type": "must be a mapping",
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
}


def key_path(loc: tuple[Any, ...]) -> str:
    """("collectors", "node", "disk_paths", 1) → `collectors.node.disk_paths[1]`; a key that would not
    read as itself (empty, blank, a non-breaking space, a dot or a quote in it) is shown JSON-quoted."""
    out = ""
    for part in loc:
        if isinstance(part, int) and not isinstance(part, bool):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + _key(str(part))
    return out or "(top level)"


def _key(text: str) -> str:
    plain = text and text.isprintable() and not any(c.isspace() or c in '.[]"' for c in text)
    return text if plain else json.dumps(text)


def _message(error: Mapping[str, Any]) -> str:
    template = _MESSAGES.get(error["type"])
    if template is not None:
        try:
            return template.format(**(error.get("ctx") or {}))
        except (KeyError, ValueError, TypeError):  # a bound that is not a number: pydantic's own words
            pass
    return str(error["msg"]).removeprefix("Value error, ")


def format_errors(err: ValidationError) -> list[str]:
    problems = []
    for e in err.errors():
        if e["type"] == "cross_section":
            problems += [f"{path}: {reason}" for path, reason in e["ctx"]["problems"]]
        else:
            problems.append(f"{key_path(e['loc'])}: {_message(e)}")
    return problems
