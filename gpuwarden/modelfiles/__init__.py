"""Model files, owned here once: the checksum manifest, the canary file, and hashing only what changed.

Used by `gpuwarden doctor` (every file of a manifest, with a progress bar), the engine probe (the files it
loads, re-hashed when they change) and the reference worker (writes them). A model directory holds the
model (`canary.onnx`, `canary.safetensors` or a TensorRT plan), `canary.json` (a fixed input, the golden
output and its tolerance) and `SHA256SUMS`. The manifest is what GNU coreutils' `sha256sum`/`md5sum`
print (`HEX  NAME`, `HEX *NAME` in binary mode), so `sha256sum -c SHA256SUMS` works by hand; the digest
length picks the algorithm. No numpy or onnx here: the agent reads these files without the worker's
dependencies.
"""

from gpuwarden.modelfiles.canary import CANARY, Canary, Tensor, load_canary, write_canary
from gpuwarden.modelfiles.manifest import (
    MANIFEST,
    Entry,
    ManifestError,
    Mismatch,
    StampedFiles,
    file_digest,
    parse_manifest,
    read_manifest,
    sha256_file,
    verify_files,
    verify_manifest,
    write_manifest,
)

__all__ = [
    "CANARY",
    "MANIFEST",
    "Canary",
    "Entry",
    "ManifestError",
    "Mismatch",
    "StampedFiles",
    "Tensor",
    "file_digest",
    "load_canary",
    "parse_manifest",
    "read_manifest",
    "sha256_file",
    "verify_files",
    "verify_manifest",
    "write_canary",
    "write_manifest",
]
