"""Artifact I/O: checksums, and files that appear complete or not at all (temp name + rename)."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pipeline import PipelineError


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def checked_file(path: Path, sha256: str, remedy: str) -> Path:
    """`path`, after checking it exists and has the SHA-256 its metadata recorded; `remedy` says
    how to make it again."""
    if not path.is_file():
        raise PipelineError(f"missing {path}; {remedy}")
    if sha256_file(path) != sha256:
        raise PipelineError(
            f"refusing to load {path}: its SHA-256 does not match the one recorded when it was "
            f"made (the file changed since); {remedy}"
        )
    return path


def usable_cpus() -> int:
    """OMP_NUM_THREADS when set (tests share the cores that way), else the CPUs this process may
    use: the thread count for torch, ONNX Runtime and the benchmarks."""
    if os.environ.get("OMP_NUM_THREADS", "").isdigit():
        return max(1, int(os.environ["OMP_NUM_THREADS"]))
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def cpu() -> str:
    """The CPU's model and cores, its fast-precision flags ("AVX2 only" without), the load: what
    every dated speed figure says of its machine."""
    cpuinfo = Path("/proc/cpuinfo")
    info = cpuinfo.read_text(encoding="utf-8") if cpuinfo.is_file() else ""
    name = next((x.split(":", 1)[1].strip() for x in info.splitlines() if "model name" in x), "?")
    flags = [flag for flag in ("avx512_bf16", "avx512_vnni", "amx_bf16") if f" {flag}" in info]
    extra = " ".join(flags) or "AVX2 only"
    return f"{name}, {os.cpu_count()} cores, {extra}, load {os.getloadavg()[0]:.1f}"


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temp path beside `path`; rename it into place only if the block succeeds."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
    except OSError as err:
        raise PipelineError(f"cannot write to {path.parent}: {err.strerror}") from None
    tmp = Path(tmp)
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as err:
        raise PipelineError(f"cannot write {path}: {err.strerror}") from None
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: Path, text: str) -> None:
    """Write `text` as UTF-8, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write `data` as indented JSON, atomically."""
    write_text(path, json.dumps(data, indent=2) + "\n")


def read_json(path: Path) -> dict[str, Any]:
    """Read a JSON artifact, with a clear error when it is missing or damaged."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PipelineError(f"missing file: {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise PipelineError(f"{path} is damaged ({err}); rerun the stage that writes it") from None


def not_utf8(name: str | Path, line: int, byte: int) -> PipelineError:
    """The error for a byte that is not UTF-8, with its line: one wording for every reader."""
    return PipelineError(f"{name}, line {line}: not UTF-8 (byte 0x{byte:02x}); save it as UTF-8")
