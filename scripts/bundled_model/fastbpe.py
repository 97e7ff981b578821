"""fastBPE's own command-line tool (learnbpe, applybpe, getvocab), compiled from its PyPI sdist."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

SDIST = "fastBPE==0.1.0"


class FastBPEError(RuntimeError):
    """The fastBPE tool could not be fetched or built."""


def build_tool(workdir: Path) -> Path:
    """The compiled `fast` binary in workdir, built from fastBPE's main.cc unless already there."""
    binary = workdir / "fast"
    if binary.is_file():
        return binary
    if shutil.which("g++") is None:
        raise FastBPEError("building fastBPE's learnbpe needs g++ (apt-get install g++)")
    workdir.mkdir(parents=True, exist_ok=True)
    download = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:"]
    result = subprocess.run([*download, SDIST, "--dest", str(workdir)], capture_output=True, text=True)
    archives = sorted(workdir.glob("fastBPE-*.tar.gz"))
    if result.returncode != 0 or not archives:
        raise FastBPEError(f"pip could not download the {SDIST} sdist: {result.stderr.strip()[-300:]}")
    with tarfile.open(archives[-1]) as archive:
        archive.extractall(workdir, filter="data")
    source = next(workdir.glob("fastBPE-*/fastBPE"))
    subprocess.run(
        ["g++", "-std=c++11", "-pthread", "-O3", str(source / "main.cc"), f"-I{source}", "-o", str(binary)], check=True
    )
    return binary


def learn(tool: Path, n_merges: int, inputs: list[Path], codes: Path) -> None:
    """BPE codes learnt jointly on the inputs, written to `codes` (merges.txt in the hub layout)."""
    with codes.open("w") as out:
        subprocess.run([str(tool), "learnbpe", str(n_merges), *map(str, inputs)], stdout=out, check=True)


def apply(tool: Path, source: Path, target: Path, codes: Path) -> None:
    """source with every word split into BPE units (`xx@@ yy`), every merge applied as transformers does."""
    subprocess.run([str(tool), "applybpe", str(target), str(source), str(codes)], check=True, capture_output=True)


def vocabulary(tool: Path, inputs: list[Path], vocab: Path) -> None:
    """The BPE units of the inputs, one `unit count` line each, most frequent first."""
    with vocab.open("w") as out:
        subprocess.run([str(tool), "getvocab", *map(str, inputs)], stdout=out, check=True, stderr=subprocess.DEVNULL)
