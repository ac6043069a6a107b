"""Label a large file with a trained classifier: streamed, in input order, resumable.

    python -m pipeline.scale.batch_predict --model models/alammar-2000-minilm \\
        --input data/corpus/synthetic-1000000.txt --output predictions.parquet

Input (by suffix): .txt, one text a line (as predict.py --file); .jsonl, a JSON object a line
with a "text" (or "sentence") field and optionally an "id"; .parquet, a "text" (or "sentence")
column and optionally an "id" column (--text-column and --id-column name others).

Output: Parquet, one row per input row in input order: ``row`` (0-based), ``id`` (when the input
has ids; JSON ids become text), ``label``, ``probability`` (the label's), ``p_<class>`` for every
class, and ``error``: null, or why that row has no label ("empty text", "not a string"). With
--explain (`Classifier.explain`, about four encodes a word), ``top_words`` too: the row's five
words of largest |weight|, largest first, each a struct {word, start, end, weight} (weight: in
the label's log-odds, + toward it; ``text[start:end] == word``), empty for an error row. A bad
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
from functools import partial
from pathlib import Path
from typing import Any

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
from pipeline.tint import top_words

CHUNK_ROWS = 20_000
EXPLAIN_TEXTS = 256  # texts explained at once: each one's variants' vectors are all held together
META_KEY = b"batch_predict"
TOP_WORD = pa.struct(  # an explained word, without the per-class weights of K > 2 classes
    [("word", pa.string()), ("start", pa.int64()), ("end", pa.int64()), ("weight", pa.float64())]
)
TYPES = {"label": pa.string(), "error": pa.string(), "top_words": pa.list_(TOP_WORD)}  # else float
Label = Callable[[Classifier, list[Any]], dict[str, list]]  # a chunk's texts -> result columns


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
    explain: bool = False,
) -> Path:
    """Label every row of `input_path` into the Parquet file `output`, resuming finished parts;
    `explain` adds each row's top words."""
    if output.suffix != ".parquet":
        raise PipelineError(f"--output must be a .parquet file (got {output})")
    load_probe(model_dir)  # a folder without a sound classifier fails here, before any work
    manifest = {
        "model": str(model_dir.resolve()),
        "model_sha256": sha256_file(model_dir / "model.json"),
        "input": scan_input(input_path, text_column, id_column),
        "chunk_rows": chunk_rows,
        "explain": explain,
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
        predict_parts(model_dir, pending, write, partial(label_columns, explain=explain), engine)
    _concatenate(parts, n_chunks, output, {**manifest, "engine": engine, "ray": ray})
    return output


def predict_parts_local(
    model_dir: Path,
    chunks: Iterable[Chunk],
    write: Callable[[Chunk, dict[str, list]], None],
    label: Label,
    engine: str = "auto",
) -> None:
    """In this process: load the classifier once, then write each chunk's `label` columns."""
    classifier = Classifier.load(model_dir, engine)
    for chunk in chunks:
        write(chunk, label(classifier, chunk.texts))


def label_columns(
    classifier: Classifier, texts: list[Any], explain: bool = False
) -> dict[str, list]:
    """A chunk's result columns (`pipeline.results.columns`), and with `explain` its
    ``top_words``: what the local path and the Ray actors both write. Explained EXPLAIN_TEXTS
    texts at a time, so memory does not grow with --chunk-rows."""
    if not explain:
        return columns(classifier.results(texts), classifier.labels)
    rows = [
        row
        for start in range(0, len(texts), EXPLAIN_TEXTS)
        for row in classifier.explain(texts[start : start + EXPLAIN_TEXTS])
    ]
    top = [top_words(row.get("words", [])) for row in rows]
    return {**columns(rows, classifier.labels), "top_words": top}


def write_part(parts: Path, chunk: Chunk, results: dict[str, list]) -> None:
    """Write one labeled chunk's result columns, its row numbers and ids in front, as a part."""
    table = {"row": pa.array(np.arange(chunk.start, chunk.start + len(chunk.texts)), pa.int64())}
    if chunk.ids is not None:
        table["id"] = pa.array([printable(i) for i in chunk.ids])
    for name, values in results.items():
        table[name] = pa.array(values, TYPES.get(name, pa.float64()))
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
    parser.add_argument(
        "--explain",
        action="store_true",
        help="add top_words: each row's 5 strongest words and their weights (about four encodes "
        "a word: a smaller --chunk-rows keeps the resume points close)",
    )
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
        explain=args.explain,
    )


if __name__ == "__main__":
    cli.run(main)
