"""Hypothesis strategies for config files a careless or hostile hand could write: real keys of the schema
with wrong, infinite or huge values, YAML tags, anchors and aliases, duplicate keys, deep nesting, and
bytes that are not UTF-8 at all. Shared by the loader's fuzz test and the SIGHUP reload test."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import strategies as st
from pydantic import BaseModel

from gpuwarden.config import AgentConfig

EXAMPLE = (Path(__file__).resolve().parents[1] / "examples" / "agent.yaml").read_bytes()


def _schema_keys(model: type[BaseModel], out: set[str]) -> set[str]:
    for name, field in model.model_fields.items():
        out.add(name)
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            _schema_keys(field.annotation, out)
    return out


KEYS = sorted(_schema_keys(AgentConfig, set()))
TOP_KEYS = sorted(AgentConfig.model_fields)

# Scalars as written in the file: each a class of trouble (infinities, huge or odd numbers, tags, anchors,
# aliases to nothing, timestamps, nulls, strings where numbers go and the reverse).
HOSTILE_SCALARS = [
    ".inf",
    "-.inf",
    ".nan",
    ".NaN",
    "1.0e+309",
    "-1.0e+309",
    "1e309",
    "1.0e+300",
    "9" * 5000,
    "0x" + "f" * 40,
    "1_000",
    "0o777",
    "0b101",
    "190:20:30",
    "~",
    "null",
    "true",
    "no",
    "''",
    '""',
    '"\\0"',
    "2001-13-45",
    "2001-12-14",
    "2001-12-14t21:59:43.10-05:00",
    "12:30:45",
    "-1",
    "0",
    "1",
    "15",
    "0.5",
    "127.0.0.1:9837",
    "[::1]:0",
    "::1:9837",
    "localhost:99999",
    "/nonexistent",
    "/dev/zero",
    "!!python/object/apply:os.system ['true']",
    "!!python/name:os.system",
    "!!binary aGVsbG8=",
    "!!float abc",
    "!!int 1x",
    "!!timestamp x",
    "!!set {a, b}",
    "!custom x",
    "! x",
    "*undefined",
    "&a x",
    "*a",
    "[]",
    "{}",
    "[1, [2, [3]]]",
    '"\\uD800"',
    "'\\xff'",
    "|\n  block",
    ">-\n  folded",
    "<<: *a",
    "'unterminated",
    '"unterminated',
    "{a: 1, a: 2}",
    "[" * 40 + "]" * 40,
    "? a",
    "- x",
    "@x",
]
HOSTILE_KEYS = ["~", "1", "true", "1.5", "[a]", "{a: 1}", "<<", "? [x]", "&k key", "*k", "!!str k", "''"]


def _quoted(text: str) -> str:
    return json.dumps(text)  # a JSON string is a valid YAML double-quoted scalar


scalars = st.one_of(
    st.sampled_from(HOSTILE_SCALARS),
    st.integers().map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(max_size=20).map(_quoted),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12),  # raw, maybe not YAML
)
keys = st.one_of(st.sampled_from(KEYS), st.sampled_from(HOSTILE_KEYS), st.text(max_size=8))

# A tree: a scalar, a list, or a mapping given as (key, value) pairs so that keys may repeat.
trees = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.lists(st.tuples(keys, children), max_size=5)
    ),
    max_leaves=25,
)


def render(node: object, indent: int = 0) -> str:
    """Block-style YAML for a tree; scalars are pasted as written, so they can be anything."""
    pad = " " * indent
    if isinstance(node, str):
        return node
    lines = []
    if node and isinstance(node[0], tuple):  # type: ignore[index]
        for key, value in node:  # type: ignore[attr-defined]
            body = render(value, indent + 2)
            lines.append(f"{pad}{key}:" + (f"\n{body}" if not isinstance(value, str) else f" {body}"))
    else:
        for item in node:  # type: ignore[attr-defined]
            body = render(item, indent + 2)
            lines.append(f"{pad}-" + (f"\n{body}" if not isinstance(item, str) else f" {body}"))
    return "\n".join(lines) if lines else pad + "{}"


PREFIXES = ["", "---\n", "%YAML 1.1\n---\n", "--- !!map\n", "&root\n", "%TAG ! tag:evil.example,2024:\n---\n"]
SUFFIXES = ["", "\n", "\n---\nb: 1\n", "\n...\n", "\nalias: *root\n"]

documents = st.builds(
    lambda prefix, pairs, suffix: (prefix + render(pairs) + suffix).encode(),
    st.sampled_from(PREFIXES),
    st.lists(st.tuples(st.one_of(st.sampled_from(TOP_KEYS), keys), trees), max_size=5),
    st.sampled_from(SUFFIXES),
)


@st.composite
def mutated_example(draw: st.DrawFn) -> bytes:
    """The shipped example config with a few bytes replaced, inserted or cut: almost right, subtly not."""
    data = bytearray(EXAMPLE)
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(data)))
        junk = draw(st.binary(min_size=0, max_size=8))
        cut = draw(st.integers(0, 8))
        data[at : at + cut] = junk
    return bytes(data)


config_bytes = st.one_of(documents, mutated_example(), st.binary(max_size=400))
