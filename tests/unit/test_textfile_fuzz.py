"""Fuzz: whatever the `*.prom` files hold, the agent's whole page passes `promtool check metrics`, good
files keep every series, and files broken in a known way are reported.

Each example is a directory of good files (generated families of every type, label values with quotes,
backslashes, newlines and non-ASCII, NaN and infinities) and broken ones (a good file with one defect:
a second TYPE, an OpenMetrics-only type, a non-numeric quantile, a reserved name, a timestamp, invalid
UTF-8, a clash with another file, or random damage). The page is the real one (the runner renders the
textfile collector with the agent's own series). promtool runs once per batch of pages: each page's
names get a batch prefix, so the pages cannot clash with one another in the batch.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import subprocess
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.utils import floatToGoString

from gpuwarden.agent.context import build_collector
from gpuwarden.agent.health_store import HealthStore
from gpuwarden.agent.runner import Runner
from gpuwarden.config import AgentConfig

# At least 5,000 files in all: an example holds one to five.
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "2500"))
FILES = 5000 if "FUZZ_EXAMPLES" not in os.environ else 0
BATCH = 250
WORDS = ("model", "job", "burnin", "disk", "queue", "depth", "temp", "fan", "link", "errors", "last", "run")
LABELS = ("job", "gpu", "model", "path")
# Label values and help text: printable text, quotes, backslashes, newlines, non-ASCII; no surrogates.
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=8)
VALUES = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-(10**12), 10**12).map(float))

Sample = tuple[str, tuple[tuple[str, str], ...]]


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _line(name: str, labels: tuple[tuple[str, str], ...], value: float) -> str:
    inner = ",".join(f'{k}="{_escape_label(v)}"' for k, v in labels)
    return f"{name}{{{inner}}} {floatToGoString(value)}\n" if inner else f"{name} {floatToGoString(value)}\n"


@st.composite
def family(draw: st.DrawFn, base: str) -> tuple[str, dict[Sample, float]]:
    """One family as text and its expected samples."""
    kind = draw(st.sampled_from(("counter", "gauge", "untyped", "summary", "histogram")))
    label_names = draw(st.lists(st.sampled_from(LABELS), unique=True, max_size=2))
    label_sets = draw(st.lists(st.tuples(*[TEXT] * len(label_names)), min_size=1, max_size=3, unique=True))
    served = base + "_total" if kind == "counter" else base
    text = ""
    if draw(st.booleans()):
        help_text = draw(TEXT).replace("\\", "\\\\").replace("\n", "\\n")
        text += f"# HELP {served} {help_text}\n"
    if kind != "untyped":
        text += f"# TYPE {served} {kind}\n"
    expected: dict[Sample, float] = {}
    for values in label_sets:
        labels = tuple(zip(label_names, values, strict=True))
        if kind in ("counter", "gauge", "untyped"):
            rows = [(served, labels)]
        elif kind == "summary":
            qs = draw(st.lists(st.sampled_from(("0.5", "0.9", "0.99")), unique=True))
            rows = [(base, (*labels, ("quantile", q))) for q in qs] + [
                (base + "_sum", labels),
                (base + "_count", labels),
            ]
        else:
            les = sorted(draw(st.lists(st.sampled_from(("0.1", "1", "10")), unique=True)), key=float)
            rows = [(base + "_bucket", (*labels, ("le", le))) for le in [*les, "+Inf"]]
            rows += [(base + "_sum", labels), (base + "_count", labels)]
        for name, row_labels in rows:
            value = draw(VALUES)
            text += _line(name, row_labels, value)
            expected[(name, tuple(sorted(row_labels)))] = value
    return text, expected


@st.composite
def good_file(draw: st.DrawFn, prefix: str) -> tuple[str, dict[Sample, float]]:
    bases = draw(st.lists(st.tuples(*[st.sampled_from(WORDS)] * 2), min_size=1, max_size=3, unique=True))
    text, expected = "", {}
    for words in bases:
        part, samples = draw(family(f"{prefix}_{'_'.join(words)}"))
        text += part
        expected |= samples
    return text, expected


# Defects that make a file invalid whatever else it holds: the collector must report the file.
def _defects(base: str, clash: str | None) -> list[str]:
    clashes = [f"# TYPE {clash} gauge\n{clash} 1\n"] if clash else []
    return clashes + [
        f"# TYPE {base} gauge\n{base} 1\n# TYPE {base} gauge\n",
        f"# TYPE {base} info\n{base}_info 1\n",
        f'# TYPE {base} stateset\n{base}{{s="a"}} 1\n',
        f'# TYPE {base} gaugehistogram\n{base}_bucket{{le="+Inf"}} 1\n',
        f"# TYPE {base} unknown\n{base} 1\n",
        f'# TYPE {base} summary\n{base}{{quantile="abc"}} 1\n',
        f'# TYPE {base} summary\n{base}{{quantile=""}} 1\n',
        f'# TYPE {base} histogram\n{base}_bucket{{le="x"}} 1\n',
        f'{base}{{quantile="0.5"}} 1\n',
        f'{base}{{le="1"}} 1\n',
        "gpuwarden_gpu_utilization_ratio 1\n",
        "process_resident_memory_bytes 1\n",
        "# TYPE python_gc_objects_collected counter\npython_gc_objects_collected_total 1\n",
        f"{base} 1 1700000000000\n",
        f'{base}{{a="1"}} 1\n{base}{{a="1"}} 2\n',
        f"# HELP {base} a\n# HELP {base} b\n{base} 1\n",
        f"{base} 1\n# TYPE {base} gauge\n",
        f'{base}{{__x="1"}} 1\n',
        f'{{"{base}.x"}} 1\n',
    ]


@st.composite
def bad_file(draw: st.DrawFn, prefix: str, clash: str | None) -> tuple[bytes, bool]:
    """(content, must be reported)."""
    text, _ = draw(good_file(prefix))
    damage = draw(
        st.sampled_from(("defect", "utf8", "truncate", "garbage_line", "random_bytes", "insert_char"))
    )
    if damage == "defect":
        defect = draw(st.sampled_from(_defects(f"{prefix}_x", clash)))
        at = draw(st.sampled_from((0, len(text))))
        return (text[:at] + defect + text[at:]).encode(), True
    if damage == "utf8":
        return text.encode() + b"# \xff\xfe\n", True
    if damage == "truncate":
        return text.encode()[: draw(st.integers(0, len(text.encode())))], False
    if damage == "garbage_line":
        lines = text.split("\n")
        lines.insert(draw(st.integers(0, len(lines))), draw(st.text(max_size=30)))
        return "\n".join(lines).encode("utf-8", errors="surrogatepass"), False
    if damage == "random_bytes":
        return draw(st.binary(max_size=200)), False
    at = draw(st.integers(0, len(text)))
    return (text[:at] + draw(st.sampled_from('{}"=\\ #\n,')) + text[at:]).encode(), False


@st.composite
def directory(
    draw: st.DrawFn,
) -> tuple[dict[str, tuple[str, dict[Sample, float]]], dict[str, tuple[bytes, bool]]]:
    goods = {f"a{i}.prom": draw(good_file(f"f{i}")) for i in range(draw(st.integers(1, 3)))}
    # A clash target: a served name of a good file (same name, another type), else a fresh one.
    names = [name for text, _ in goods.values() for name in _served_names(text)]
    clash = draw(st.sampled_from(names)) if names else None
    bads = {f"z{i}.prom": draw(bad_file(f"b{i}", clash)) for i in range(draw(st.integers(0, 2)))}
    return goods, bads


def _served_names(text: str) -> list[str]:
    lines = text.split("\n")
    return [line.split()[2] for line in lines if line.startswith("# TYPE ") and not line.endswith(" gauge")]


def _parse_page(page: str) -> dict[Sample, float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(page)
        for s in family.samples
    }


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def _prefixed(page: str, prefix: str) -> str:
    out = []
    for line in page.split("\n"):  # not splitlines(): \x1d or \u2028 in a label value is no line end
        if line.startswith(("# HELP ", "# TYPE ")):
            out.append(line[:7] + prefix + line[7:])
        elif line:
            out.append(prefix + line)
    return "\n".join(out) + "\n"


def _promtool(pages: list[str]) -> tuple[int, str]:
    text = "".join(_prefixed(page, f"b{i}_") for i, page in enumerate(pages))
    done = subprocess.run(["promtool", "check", "metrics"], input=text.encode(), capture_output=True)
    return done.returncode, (done.stdout + done.stderr).decode(errors="replace")


def test_no_textfile_can_spoil_the_agents_page(tmp_path: Path) -> None:
    textdir = tmp_path / "textfile"
    textdir.mkdir()
    config = AgentConfig.model_validate(
        {"collectors": {"textfile": {"enabled": True, "directory": str(textdir)}}}
    )
    log = logging.getLogger("fuzz")
    runner = Runner(HealthStore(), log)
    runner.set_collectors(
        {"textfile": (build_collector("textfile", config, log), config.collector_settings("textfile"))}
    )
    pages: list[tuple[str, dict[str, bytes]]] = []

    @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(directory())
    def one(case: tuple[dict[str, tuple[str, dict[Sample, float]]], dict[str, tuple[bytes, bool]]]) -> None:
        goods, bads = case
        shutil.rmtree(textdir)
        textdir.mkdir()
        files = {name: text.encode() for name, (text, _) in goods.items()} | {
            n: b for n, (b, _) in bads.items()
        }
        for name, content in files.items():
            (textdir / name).write_bytes(content)
        assert runner.run("textfile")
        page = runner.exposition.plain.decode()
        served = _parse_page(page)
        for name, (_, expected) in goods.items():
            for sample, value in expected.items():
                assert sample in served and _same(served[sample], value), f"{name} lost {sample}={value}"
        for name, (_, reported) in bads.items():
            if reported:
                assert f'gpuwarden_textfile_file_error{{file="{name}"' in page, f"{name} was not reported"
        pages.append((page, files))

    one()
    files = sum(len(f) for _, f in pages)
    print(f"{len(pages)} pages from {files} files")
    assert len(pages) >= EXAMPLES and files >= FILES
    for start in range(0, len(pages), BATCH):
        batch = pages[start : start + BATCH]
        rc, output = _promtool([page for page, _ in batch])
        if (rc, output) != (0, ""):
            for page, files in batch:  # find the page promtool rejects, for the report
                rc, output = _promtool([page])
                assert (rc, output) == (0, ""), f"promtool: {output}\nfiles: {files}\npage:\n{page}"
            raise AssertionError(f"a batch fails but no page alone does: {output}")
