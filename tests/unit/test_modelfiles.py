"""Model files (gpuwarden.modelfiles): manifest parsing, mismatches, streaming memory over a multi-GB file."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gpuwarden.modelfiles import ManifestError, file_digest, parse_manifest, verify_manifest


def test_a_sha256sum_manifest_parses_including_binary_mode_markers() -> None:
    md5, sha = (
        "d41d8cd98f00b204e9800998ecf8427e",
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    )
    entries = parse_manifest(f"# weights\n{sha}  model.safetensors\n{md5} *tokenizer.json\n\n")
    assert [(e.path, e.algorithm, e.digest) for e in entries] == [
        ("model.safetensors", "sha256", sha),
        ("tokenizer.json", "md5", md5),
    ]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("abc  model.bin\n", "line 1: expected"),
        ("", "no entries"),
        ("d41d8cd98f00b204e9800998ecf8427e  ../../etc/shadow\n", "must stay inside"),
        ("d41d8cd98f00b204e9800998ecf8427e  /etc/shadow\n", "must stay inside"),
    ],
)
def test_a_bad_manifest_line_is_refused_with_its_line_number(text: str, problem: str) -> None:
    with pytest.raises(ManifestError, match=problem):
        parse_manifest(text)


def test_verify_names_missing_and_changed_files(tmp_path: Path) -> None:
    (tmp_path / "a.bin").write_bytes(b"alpha")
    (tmp_path / "b.bin").write_bytes(b"beta, changed")
    lines = [
        f"{hashlib.sha256(b'alpha').hexdigest()}  a.bin",
        f"{hashlib.md5(b'beta').hexdigest()}  b.bin",
        f"{hashlib.sha256(b'gamma').hexdigest()}  c.bin",
    ]
    (tmp_path / "SUMS").write_text("\n".join(lines) + "\n")
    count, problems = verify_manifest(str(tmp_path / "SUMS"))
    assert count == 3
    assert [(p.path, p.problem) for p in problems] == [("b.bin", "md5 differs"), ("c.bin", "missing")]


def test_digest_matches_hashlib_across_chunk_boundaries(tmp_path: Path) -> None:
    data = os.urandom((1 << 20) * 2 + 12345)  # two full chunks and a partial one
    path = tmp_path / "w.bin"
    path.write_bytes(data)
    seen: list[int] = []
    assert file_digest(str(path), "sha256", seen.append) == hashlib.sha256(data).hexdigest()
    assert sum(seen) == len(data) and len(seen) > 1  # streamed in chunks, every byte reported once


PEAK_RSS = """
import resource, sys
from gpuwarden.modelfiles import verify_manifest
if sys.argv[1] == "verify":
    count, problems = verify_manifest(sys.argv[2])
    assert count == 1 and problems == [], problems
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
"""


@pytest.mark.integration
def test_verifying_a_3_gib_sparse_file_keeps_peak_memory_flat(tmp_path: Path) -> None:
    size = 3 << 30
    weights = tmp_path / "model.safetensors"
    with open(weights, "wb") as f:
        f.truncate(size)  # sparse: no disk blocks, but every byte is read and hashed
    # The expected digest comes from hashing zero bytes in memory, independent of the file and our reader.
    expected, zeros = hashlib.md5(), bytes(1 << 24)
    for _ in range(size // len(zeros)):
        expected.update(zeros)
    (tmp_path / "MD5SUMS").write_text(f"{expected.hexdigest()}  model.safetensors\n")

    def peak(*args: str) -> int:
        out = subprocess.run(
            [sys.executable, "-c", PEAK_RSS, *args], capture_output=True, text=True, check=True
        )
        return int(out.stdout)

    baseline = peak("import-only")
    verifying = peak("verify", str(tmp_path / "MD5SUMS"))
    print(f"peak RSS: {baseline / 2**20:.1f} MiB importing, {verifying / 2**20:.1f} MiB verifying 3 GiB")
    # Streaming costs one hashlib.file_digest buffer plus allocator slack; loading the file would cost 3 GiB.
    assert verifying - baseline < 16 << 20
