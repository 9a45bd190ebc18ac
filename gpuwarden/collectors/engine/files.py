"""The engine probe's model files: gpuwarden.modelfiles' stamped, verified files, with its errors said in
the probe's failure reasons (a bounded label value and the sentence on-call reads)."""

from __future__ import annotations

from gpuwarden import modelfiles
from gpuwarden.collectors.engine.probe import ProbeFailure
from gpuwarden.modelfiles import Canary, ManifestError, StampedFiles

PLAN_SUFFIXES = (".plan", ".engine")  # a serialized TensorRT engine


class ModelFiles(StampedFiles):
    def refresh(self) -> bool:
        """True when the files are new or changed (and now verified); ProbeFailure when they are bad."""
        try:
            return super().refresh()
        except ManifestError as err:
            if err.kind == "missing" and (err.file or "").endswith(PLAN_SUFFIXES):
                raise ProbeFailure("missing_plan", str(err)) from None
            if err.kind in ("missing", "unreadable"):
                raise ProbeFailure("model_invalid", str(err)) from None
            raise ProbeFailure("checksum_mismatch", f"{self.directory}: {err}") from None

    def load_canary(self) -> Canary:
        try:
            return modelfiles.load_canary(self.path(modelfiles.CANARY))
        except ManifestError as err:
            raise ProbeFailure("model_invalid", str(err)) from None
