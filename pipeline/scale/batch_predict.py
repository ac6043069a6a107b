"""Label a large file with a trained classifier: streamed, in input order, resumable.

    python -m pipeline.scale.batch_predict --model models/alammar-2000-minilm \\
        --input data/corpus/synthetic-1000000.txt --output predictions.parquet

Input (by suffix): .txt, one text a line (as predict.py --file); .jsonl, a JSON object a line
with a "text" (or "sentence") field and optionally an "id"; .parquet, a "text" (or "sentence")
column and optionally an "id" column (--text-column and --id-column name others).

Output: Parquet, one row per input row in input order: ``row`` (0-based), ``id`` (when the input
has ids; JSON ids become text), ``label``, ``probability`` (the label's), ``p_<class>`` for every
class, and ``error``: null, or why that row has no label ("empty text", "not a string"). A bad
row never stops the run; a bad file (missing, unknown suffix, not UTF-8, not JSON, no text
column) stops it before any work, with one line and exit code 2.

The input is read and labeled in chunks of --chunk-rows rows, so memory does not grow with it.
Each labeled chunk is written as ``<output>.parts/part-NNNNNN.parquet`` (temp name + rename)
beside a ``manifest.json`` with the model's and the input's SHA-256. A killed run, started again
with the same arguments, labels only the chunks that have no part yet; at the end the parts are
streamed into the output (whose metadata holds the manifest) and removed. Rerunning a finished
job with the same model and input does nothing.
"""

from __future__ import annotations

import argparse
import json
import shutil
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline import PipelineError, cli
from pipeline.classifier import ENGINES, Classifier
from pipeline.data.reader import Chunk, read_chunks, scan_input
from pipeline.io import atomic_path, read_json, sha256_file, write_json
from pipeline.labelable import printable
from pipeline.probe import latest_model, load_probe
from pipeline.progress import progress_bar
from pipeline.results import columns

CHUNK_ROWS = 20_000
META_KEY = b"batch_predict"
TEXT_COLUMNS = ("label", "error")  # the result columns that hold text; the others are numbers


def batch_predict(
    model_dir: Path,
    input_path: Path,
    output: Path,
    engine: str = "auto",
    ray: bool = False,
    chunk_rows: int = CHUNK_ROWS,
    text_column: str | None = None,
    id_column: str | None = None,
    progress: bool = True,
) -> Path:
    """Label every row of `input_path` into the Parquet file `output`, resuming finished parts."""
    if output.suffix != ".parquet":
        raise PipelineError(f"--output must be a .parquet file (got {output})")
    load_probe(model_dir)  # a folder without a sound classifier fails here, before any work
    manifest = {
        "model": str(model_dir.resolve()),
        "model_sha256": sha256_file(model_dir / "model.json"),
        "input": scan_input(input_path, text_column, id_column),
        "chunk_rows": chunk_rows,
    }
    if _finished(output, manifest):
        return output
    parts = output.with_name(output.name + ".parts")
    done = _prepare_parts(parts, manifest)
    rows = manifest["input"]["rows"]
    n_chunks = -(-rows // chunk_rows)
    pending = (
        c
        for c in read_chunks(input_path, chunk_rows, text_column, id_column)
        if c.index not in done
    )
    with progress_bar(total=rows, unit="text", desc="labeling", disable=not progress) as bar:
        bar.update(sum(min(chunk_rows, rows - i * chunk_rows) for i in done))

        def write(chunk: Chunk, results: dict[str, list]) -> None:
            write_part(parts, chunk, results)
            bar.update(len(chunk.texts))

        if ray:
            from pipeline.scale.ray_engine import predict_parts  # Ray is an optional extra
        else:
            predict_parts = predict_parts_local
        predict_parts(model_dir, pending, write, engine)
    _concatenate(parts, n_chunks, output, {**manifest, "engine": engine, "ray": ray})
    return output


def predict_parts_local(
    model_dir: Path,
    chunks: Iterable[Chunk],
    write: Callable[[Chunk, dict[str, list]], None],
    engine: str = "auto",
) -> None:
    """In this process: load the classifier once, then write each chunk's result columns."""
    classifier = Classifier.load(model_dir, engine)
    for chunk in chunks:
        write(chunk, columns(classifier.results(chunk.texts), classifier.labels))


def write_part(parts: Path, chunk: Chunk, results: dict[str, list]) -> None:
    """Write one labeled chunk's result columns, its row numbers and ids in front, as a part."""
    table = {"row": pa.array(np.arange(chunk.start, chunk.start + len(chunk.texts)), pa.int64())}
    if chunk.ids is not None:
        table["id"] = pa.array([printable(i) for i in chunk.ids])
    for name, values in results.items():
        table[name] = pa.array(values, pa.string() if name in TEXT_COLUMNS else pa.float64())
    with atomic_path(parts / f"part-{chunk.index:06d}.parquet") as tmp:
        pq.write_table(pa.table(table), tmp)


def _finished(output: Path, manifest: dict) -> bool:
    """True when `output` is complete and was made from this model and input."""
    try:
        meta = pq.read_schema(output).metadata or {}
        made = json.loads(meta.get(META_KEY, b"{}"))
    except (OSError, pa.ArrowException, ValueError):
        return False
    return {k: made.get(k) for k in manifest} == manifest


def _prepare_parts(parts: Path, manifest: dict) -> set[int]:
    """The indexes of finished parts; a parts folder from another model or input is cleared."""
    try:
        if (parts / "manifest.json").is_file() and read_json(parts / "manifest.json") == manifest:
            return {int(p.stem.split("-")[1]) for p in parts.glob("part-*.parquet")}
        shutil.rmtree(parts, ignore_errors=True)
        parts.mkdir(parents=True)
    except OSError as err:
        raise PipelineError(f"cannot write {parts}: {err.strerror or err}") from None
    write_json(parts / "manifest.json", manifest)
    return set()


def _concatenate(parts: Path, n_chunks: int, output: Path, manifest: dict) -> None:
    """Stream the parts, in order, into `output` (atomically), then remove them."""
    made = {**manifest, "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    with atomic_path(output) as tmp:
        writer = None
        for index in range(n_chunks):
            table = pq.read_table(parts / f"part-{index:06d}.parquet")
            if writer is None:
                schema = table.schema.with_metadata({META_KEY: json.dumps(made).encode()})
                writer = pq.ParquetWriter(tmp, schema)
            writer.write_table(table.cast(schema))
        if writer is not None:
            writer.close()
    shutil.rmtree(parts)


def main() -> None:
    """Command line: label a file with a trained classifier."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model", type=Path, help="classifier folder models/<run> (default: newest in models/)"
    )
    parser.add_argument("--input", type=Path, required=True, help="texts: .txt, .jsonl or .parquet")
    parser.add_argument("--output", type=Path, required=True, help="predictions: a .parquet file")
    parser.add_argument(
        "--engine",
        choices=ENGINES,
        default="auto",
        help="onnx (after make export), torch, or auto (default: onnx when exported)",
    )
    parser.add_argument(
        "--ray", action="store_true", help="label the chunks on Ray actors (the scale extra)"
    )
    parser.add_argument(
        "--chunk-rows", type=int, default=CHUNK_ROWS, help=f"rows a part (default {CHUNK_ROWS})"
    )
    parser.add_argument("--text-column", help="the text field (default: text or sentence)")
    parser.add_argument("--id-column", help="the id field (default: id, when present)")
    args = parser.parse_args()
    if args.chunk_rows < 1:
        parser.error("--chunk-rows must be at least 1")
    batch_predict(
        args.model or latest_model(),
        args.input,
        args.output,
        args.engine,
        args.ray,
        args.chunk_rows,
        args.text_column,
        args.id_column,
    )


if __name__ == "__main__":
    cli.run(main)
