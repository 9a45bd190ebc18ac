"""The timeline as a picture: the key series the agent exported during the drill, one panel each, with
every injected fault and every remediation action marked. matplotlib's Agg backend: no display needed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gpuwarden.demo.configs import REPLAY_LABEL
from gpuwarden.demo.timeline import Event

PANELS = (
    # (sample keys, y label, horizontal line or None)
    (("p99_latency_s",), "inference p99 (s)", "slo"),
    (("error_ratio", "probe_success"), "error ratio / canary ok", None),
    (("zk_tolerable_failures", "zk_quorum_ok"), "ZooKeeper", None),
    (("replay_gpu_utilization",), "GPU 0 util (REPLAY)", None),
)
MARKS = {
    "inject": ("tab:red", "--"),
    "act": ("tab:green", "-"),
    "held": ("tab:orange", "-."),
    "recover": ("tab:blue", ":"),
}


def spans(events: list[Event]) -> dict[str, tuple[float, float]]:
    """Incident -> (fault injected, recovered), for the shaded bands."""
    out: dict[str, tuple[float, float]] = {}
    for e in events:
        if e.role == "inject" and e.incident not in out:
            out[e.incident] = (e.t, e.t)
        elif e.role == "recover" and e.incident in out:
            out[e.incident] = (out[e.incident][0], e.t)
    return out


def draw(path: Path, samples: list[dict[str, Any]], events: list[Event], slo: float, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(PANELS), 1, figsize=(13, 9), sharex=True)
    ts = [s["t"] for s in samples]
    for ax, (keys, label, hline) in zip(axes, PANELS, strict=True):
        for key in keys:
            ys = [s.get(key) for s in samples]
            ys = [float("nan") if y is None else y for y in ys]
            ax.plot(ts, ys, label=key.replace("_", " "), linewidth=1.4)
        if hline == "slo":
            ax.axhline(slo, color="grey", linestyle="--", linewidth=0.8, label=f"SLO {slo * 1000:.0f} ms")
        ax.set_ylabel(label, fontsize=8)
        ax.legend(loc="upper right", fontsize=7)
        ax.grid(alpha=0.3)
    axes[-1].set_title(REPLAY_LABEL, fontsize=8, loc="left", color="tab:purple")
    axes[-1].set_xlabel("seconds since the drill started")
    top = axes[0]
    for incident, (start, end) in spans(events).items():
        for ax in axes:
            ax.axvspan(start, end, color="tab:orange", alpha=0.08)
        top.annotate(incident, (start, 1.02), xycoords=("data", "axes fraction"), fontsize=8, weight="bold")
    for e in events:
        if e.role not in MARKS or e.incident == "setup":
            continue
        color, style = MARKS[e.role]
        for ax in axes:
            ax.axvline(e.t, color=color, linestyle=style, linewidth=0.9, alpha=0.8)
        label = {"inject": "fault", "act": e.step.split(".")[0], "held": "held back", "recover": "recovered"}[
            e.role
        ]
        top.annotate(
            label, (e.t, 0.97), xycoords=("data", "axes fraction"), rotation=90, fontsize=6,
            va="top", ha="right", color=color,
        )  # fmt: skip
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
