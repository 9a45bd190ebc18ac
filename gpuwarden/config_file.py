"""Reading the config file into plain data, safely: whatever the file holds, the answer is data or
`ConfigError` lines, never a traceback, a hang or gigabytes of memory (the agent re-reads it on SIGHUP).

- Only a regular file is read (a FIFO would block `open()` forever, /dev/zero never ends), at most
  `MAX_BYTES` of it, and it must be UTF-8.
- Before anything is built, one pass over PyYAML's event stream (iterative, so depth costs no recursion)
  rejects what the schema never needs and an attacker would use: explicit tags (`!!python/object`,
  `!!float`, custom ones), nesting deeper than `MAX_DEPTH`, anchors and aliases that expand past
  `MAX_NODES` values (the "billion laughs"), an alias inside its own anchor (a cycle), non-scalar keys,
  and a key given twice in one mapping (PyYAML would keep the last one silently).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from typing import Any

import yaml

from gpuwarden.config_base import ConfigError, key_path

MAX_BYTES = 1 << 20  # configs are a few KiB; the example with every key is under 10 KiB
MAX_DEPTH = 32  # the schema nests 5 deep
MAX_NODES = 100_000  # values after alias expansion; the example has about 300


def read_text(path: str) -> str:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)  # O_NONBLOCK: a FIFO cannot block
    except OSError as err:
        raise ConfigError([f"{path}: cannot read: {err.strerror}"]) from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = "Is a directory" if stat.S_ISDIR(mode) else "not a regular file"
        raise ConfigError([f"{path}: cannot read: {kind}"])
    with os.fdopen(fd, "rb") as f:
        try:
            data = f.read(MAX_BYTES + 1)
        except OSError as err:
            raise ConfigError([f"{path}: cannot read: {err.strerror}"]) from None
    if len(data) > MAX_BYTES:
        raise ConfigError([f"{path}: larger than {MAX_BYTES >> 10} KiB; this is not a gpuwarden config"])
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise ConfigError([f"{path}:{line}: not UTF-8 text (byte 0x{data[err.start]:02x})"]) from None


@dataclass
class _Frame:
    """One open collection on the way down: where it is, and for a mapping which keys it has seen."""

    path: tuple[Any, ...]
    mapping: bool
    anchor: str | None
    start: int  # node count when it opened, to size its anchor
    keys: set[str] = field(default_factory=set)
    expecting_key: bool = True
    key: str = ""
    index: int = 0

    def child_path(self) -> tuple[Any, ...]:
        return (*self.path, self.key if self.mapping else self.index)

    def done_child(self) -> None:
        if self.mapping:
            self.expecting_key = True
        else:
            self.index += 1


def _problem(frames: list[_Frame], event: yaml.Event, text: str) -> ConfigError:
    path = frames[-1].child_path() if frames else ()
    mark = event.start_mark
    where = f" (line {mark.line + 1})" if mark is not None else ""
    return ConfigError([f"{key_path(path)}: {text}{where}"])


def check_events(text: str) -> None:
    """Raise ConfigError, naming the key path, for a document the schema should never have to see."""
    frames: list[_Frame] = []
    sizes: dict[str, int] = {}  # anchor → values it expands to
    nodes = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.CollectionEndEvent):
            done = frames.pop()
            if done.anchor is not None:
                sizes[done.anchor] = nodes - done.start
            if frames:
                frames[-1].done_child()
            continue
        if not isinstance(event, yaml.NodeEvent):
            continue
        top = frames[-1] if frames else None
        tag = getattr(event, "tag", None)
        if tag is not None:
            raise _problem(frames, event, f"YAML tags are not allowed (found {tag})")
        if top is not None and top.mapping and top.expecting_key:
            if not isinstance(event, yaml.ScalarEvent):
                raise _problem(frames, event, "a key must be a plain value, not a list, mapping or alias")
            if event.value in top.keys and event.value != "<<":
                top.key = event.value
                raise _problem(frames, event, f"duplicate key {event.value!r}")
            top.keys.add(event.value)
            if event.anchor is not None:
                sizes[event.anchor] = 1
            top.key, top.expecting_key = event.value, False
            nodes += 1
            continue
        if isinstance(event, yaml.AliasEvent):
            if event.anchor not in sizes:
                raise _problem(
                    frames, event, f"alias *{event.anchor} refers to an unfinished or unknown anchor"
                )
            nodes += sizes[event.anchor]
        else:
            nodes += 1
        if nodes > MAX_NODES:
            raise _problem(frames, event, f"expands to more than {MAX_NODES} values (anchors and aliases)")
        if isinstance(event, yaml.CollectionStartEvent):
            if len(frames) >= MAX_DEPTH:
                raise _problem(frames, event, f"nested deeper than {MAX_DEPTH} levels")
            path = top.child_path() if top is not None else ()
            frames.append(_Frame(path, isinstance(event, yaml.MappingStartEvent), event.anchor, nodes - 1))
            continue
        if isinstance(event, yaml.ScalarEvent) and event.anchor is not None:
            sizes[event.anchor] = 1
        if top is not None:
            top.done_child()


def read_yaml(path: str) -> object:
    """The document in `path` as plain data (dicts, lists, scalars), or ConfigError lines."""
    text = read_text(path)
    try:
        check_events(text)
        return yaml.safe_load(text)
    except yaml.reader.ReaderError as err:  # a character YAML does not allow (NUL, most C0 controls)
        line = text[: err.position].count("\n") + 1
        raise ConfigError(
            [f"{path}:{line}: invalid YAML: character {err.character!r} is not allowed"]
        ) from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else path
        said = [getattr(err, "context", None), getattr(err, "problem", None)]  # e.g. "while parsing…; found…"
        problem = "; ".join(str(s) for s in said if s) or str(err)
        raise ConfigError([f"{where}: invalid YAML: {problem}"]) from None
    except ValueError as err:  # a scalar PyYAML resolves but cannot build (an int of 5,000 digits)
        raise ConfigError([f"{path}: invalid YAML: {err}"]) from None
