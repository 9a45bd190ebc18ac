"""The torch backend of the engine probe on a real GPU: golden output, latency, memory, failure verdicts.

Run on a GPU node with torch (CUDA build), safetensors, numpy and onnx installed:
`python3 bench/engine_torch.py --out bench/results/engine-torch-h200.txt`.

Contenders, interleaved in one run on the same model directory: the torch backend with `device: cuda` in
its child process (the default) and in the agent's process; the onnxruntime CPU backend (the in-process
backend nodes had before); the bare torch forward pass with nothing around it (the floor); and the peer,
a cron-style canary script (`python3 -c` that imports torch, loads the weights, runs and compares) started
once per probe. Then the answer itself against the golden output, with and without TF32, the GPU memory
the probe process holds, and the verdicts for a missing GPU, tampered and wrong weights, a file of another
architecture, and a killed probe process.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gpuwarden import modelfiles  # noqa: E402
from gpuwarden.agent.registry import CollectorContext  # noqa: E402
from gpuwarden.collectors.engine.collector import EngineCollector  # noqa: E402
from gpuwarden.collectors.engine.settings import EngineSettings  # noqa: E402
from gpuwarden.collectors.engine.torch_backend import TorchBackend, forward  # noqa: E402
from gpuwarden.config import AgentConfig  # noqa: E402
from gpuwarden.health import HealthResult  # noqa: E402
from gpuwarden.paths import Paths  # noqa: E402
from gpuwarden.worker import model  # noqa: E402

LINES: list[str] = []

# The usual hand-written canary: a script run by cron or an exec probe, one process per check.
PEER_SCRIPT = """
import json, sys, torch
from safetensors.torch import load_file
w = load_file(sys.argv[1] + '/canary.safetensors', device=sys.argv[2])
c = json.load(open(sys.argv[1] + '/canary.json'))
x = torch.tensor(c['inputs'][0]['data']).reshape(c['inputs'][0]['shape']).to(sys.argv[2])
y = torch.relu(x @ w['W1'] + w['b1']) @ w['W2'] + w['b2']
want = torch.tensor(c['outputs'][0]['data'], dtype=torch.float64)
sys.exit(0 if torch.allclose(y.cpu().double().flatten(), want, atol=c['atol'], rtol=c['rtol']) else 1)
"""


TMP = ""


def say(line: str) -> None:
    line = line.replace(TMP, "<tmp>") if TMP else line
    print(line, flush=True)
    LINES.append(line)


DEVICE = "cuda"


def collector(model_dir: str, backend: str = "torch", **over: Any) -> EngineCollector:
    over.setdefault("torch", {"device": DEVICE})
    settings = EngineSettings.model_validate(
        {"enabled": True, "backend": backend, "model_dir": model_dir, "kernel_latency": "off", **over}
    )
    return EngineCollector(settings, CollectorContext(Paths(), logging.getLogger("bench"), AgentConfig()))


def verdict(c: EngineCollector) -> str:
    (h,) = [i for i in c.collect() if isinstance(i, HealthResult)]
    action = "" if h.suggested_action.value == "none" else f" [{h.suggested_action.value}]"
    return f"{h.state.value}{action} {h.reason}"


def timed(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def environment() -> None:
    import torch

    say(f"python {platform.python_version()}, torch {torch.__version__} (CUDA {torch.version.cuda})")
    if torch.cuda.is_available():
        cc = torch.cuda.get_device_capability(0)
        say(f"GPU {torch.cuda.get_device_name(0)} cc {cc[0]}.{cc[1]}, {torch.cuda.device_count()} device(s)")
    try:
        import pynvml

        pynvml.nvmlInit()
        say(f"driver {pynvml.nvmlSystemGetDriverVersion()}")
    except Exception as err:  # only informative
        say(f"driver: NVML unavailable ({err})")


def gpu_memory_of(pid: int | None) -> str:
    try:
        import pynvml

        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(0)
        used = pynvml.nvmlDeviceGetMemoryInfo(handle).used
        procs = {p.pid: p.usedGpuMemory for p in pynvml.nvmlDeviceGetComputeRunningProcesses(handle)}
        mine = procs.get(pid) if pid is not None else None
        per_pid = "not listed by NVML" if mine is None else f"{mine / 2**20:.0f} MiB"
        return f"device memory used {used / 2**20:.0f} MiB; probe process {pid}: {per_pid}"
    except Exception as err:
        return f"NVML: {err}"


def contenders(model_dir: str, probes: int) -> None:
    import torch

    isolated, in_agent = collector(model_dir), collector(model_dir, isolate=False)
    onnx_cpu = collector(model_dir, backend="onnxruntime")
    say(f"GPU memory before the probe process starts: {gpu_memory_of(None)}")
    first = {
        f"torch {DEVICE}, isolated": timed(lambda: list(isolated.collect())),
        f"torch {DEVICE}, in the agent": timed(lambda: list(in_agent.collect())),
        "onnxruntime cpu, isolated": timed(lambda: list(onnx_cpu.collect())),
    }
    say(f"GPU memory with the isolated probe process loaded: {gpu_memory_of(isolated.backend.pid)}")  # type: ignore[attr-defined]
    backend = TorchBackend(EngineSettings.model_validate({"torch": {"device": DEVICE}}).torch, model_dir)
    canary = modelfiles.load_canary(os.path.join(model_dir, modelfiles.CANARY))
    backend.run(canary)
    x = torch.tensor(canary.inputs[0].data).reshape(canary.inputs[0].shape)

    def bare() -> None:
        with torch.inference_mode():
            forward(torch, backend._layers or [], x.to(backend._device)).to("cpu")

    runs: dict[str, Callable[[], Any]] = {
        f"torch {DEVICE}, isolated": lambda: list(isolated.collect()),
        f"torch {DEVICE}, in the agent": lambda: list(in_agent.collect()),
        "onnxruntime cpu, isolated": lambda: list(onnx_cpu.collect()),
        "bare torch forward (floor)": bare,
    }
    walls: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(5):
        for fn in runs.values():
            fn()
    for _ in range(probes):  # interleaved, so drift on the machine hits everyone alike
        for name, fn in runs.items():
            walls[name].append(timed(fn))
    states = {name: verdict(c) for name, c in (("isolated", isolated), ("in the agent", in_agent))}
    peer_walls = []
    for _ in range(5):
        t0 = time.perf_counter()
        rc = subprocess.run([sys.executable, "-c", PEER_SCRIPT, model_dir, DEVICE]).returncode
        peer_walls.append(time.perf_counter() - t0)
        assert rc == 0, "the peer script's canary did not match"
    peer = statistics.median(peer_walls)
    say(f"latency, {probes} probes each after 5 warm-ups, interleaved (collect() wall time):")
    say(f"{'contender':<34}{'first s':>9}{'p50 ms':>9}{'p99 ms':>9}{'peer/ours p50':>15}")
    say(f"{'cron-style python script (peer)':<34}{peer_walls[0]:>9.2f}{peer * 1e3:>9.1f}{'':>9}{1.0:>15.1f}")
    for name, w in walls.items():
        p50 = statistics.median(w)
        cold = f"{first[name]:>9.2f}" if name in first else f"{'':>9}"
        say(f"{name:<34}{cold}{p50 * 1e3:>9.3f}{pct(w, 99) * 1e3:>9.3f}{peer / p50:>15.0f}")
    say("(peer: 5 runs, one process each; 'first': the first probe: process start, import, CUDA init, load)")
    for name, text in states.items():
        say(f"verdict after the run, {name}: {text}")
    for c in (isolated, in_agent, onnx_cpu):
        c.close()
    answer(backend, canary)


def answer(backend: TorchBackend, canary: modelfiles.Canary) -> None:
    import torch

    got = backend.run(canary)[canary.outputs[0].name]
    want = canary.outputs[0].data
    err = max(abs(g - w) for g, w in zip(got, want, strict=True))
    ok = all(abs(g - w) <= canary.atol + canary.rtol * abs(w) for g, w in zip(got, want, strict=True))
    tolerance = f"atol {canary.atol}, rtol {canary.rtol}"
    say(f"outputs match the golden output: {ok}; max abs error {err:.3g} ({tolerance})")
    say("  got:  " + " ".join(f"{v:+.6f}" for v in got))
    say("  want: " + " ".join(f"{v:+.6f}" for v in want))
    say(f"  ran on {backend._device}; weights on {backend._layers[0][0].device if backend._layers else '?'}")
    torch.backends.cuda.matmul.allow_tf32 = True
    tf32 = backend.run(canary)[canary.outputs[0].name]
    torch.backends.cuda.matmul.allow_tf32 = False
    err32 = max(abs(g - w) for g, w in zip(tf32, want, strict=True))
    say(f"same canary with TF32 matmuls allowed (the backend turns them off): max abs error {err32:.3g}")


def failures(tmp: Path) -> None:
    def fresh(name: str) -> str:
        d = tmp / name
        model.generate(str(d))
        return str(d)

    import torch

    missing = f"cuda:{torch.cuda.device_count()}"
    say(f"device {missing} (does not exist): {verdict(collector(fresh('nogpu'), torch={'device': missing}))}")
    d = fresh("tampered")
    with open(os.path.join(d, model.TORCH_FILE), "r+b") as f:
        f.seek(-4, os.SEEK_END)
        f.write(b"\x00\x00\x80\x7f")  # last weight becomes +inf; SHA256SUMS not updated
    say(f"weights changed after their checksum: {verdict(collector(d))}")
    d = fresh("wrong")
    model.generate(str(tmp / "other"), seed=model.DEFAULT_SEED + 1)
    os.replace(tmp / "other" / model.TORCH_FILE, os.path.join(d, model.TORCH_FILE))
    modelfiles.write_manifest(d, [model.MODEL_FILE, model.TORCH_FILE, modelfiles.CANARY])
    say(f"other weights, checksums re-signed (a bad model push): {verdict(collector(d))}")
    d = fresh("arch")
    from safetensors.numpy import save_file

    save_file(model.weights(model.DEFAULT_SEED), os.path.join(d, model.TORCH_FILE))
    modelfiles.write_manifest(d, [model.MODEL_FILE, model.TORCH_FILE, modelfiles.CANARY])
    say(f"safetensors without the architecture tag: {verdict(collector(d))}")
    c = collector(fresh("killed"))
    list(c.collect())
    pid = c.backend.pid  # type: ignore[attr-defined]
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.2)
    say(f"probe process {pid} killed with SIGKILL, next probe: {verdict(c)}")
    say(f"the probe after that (a fresh process): {verdict(c)}")
    c.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--probes", type=int, default=300, help="probes per contender")
    parser.add_argument("--out", help="also write the report to this file")
    parser.add_argument("--device", default="cuda", help="torch device (cpu only to try the script)")
    args = parser.parse_args()
    global DEVICE
    DEVICE = args.device
    now = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    say(f"# python3 bench/engine_torch.py --probes {args.probes}, {now}")
    tmp = Path(tempfile.mkdtemp(prefix="engine-torch-"))
    global TMP
    TMP = str(tmp)
    model.generate(str(tmp / "model"))
    for section in (
        environment,
        lambda: contenders(str(tmp / "model"), args.probes),
        lambda: failures(tmp),
    ):
        try:
            section()
        except Exception as err:
            say(f"FAILED: {type(err).__name__}: {err}")
    if args.out:
        Path(args.out).write_text("\n".join(LINES) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
