"""A synthetic corpus for scale runs: N labeled sentences recombined from SST-2 phrases, seeded.

Each sentence is one GLUE SST-2 train phrase or, one time in five, two phrases of the same label
joined by " , " or " and "; its label is that label. The same source, seed and N give the same
file byte for byte (a smaller N is a prefix of a larger one), and the file is written in chunks,
so memory does not grow with N.

    python -m pipeline.scale.corpus --source ../shared/data/sst2-glue/train.tsv --n 1000000 \
        --seed 0 --output data/corpus/synthetic-1m.tsv

The suffix picks the format: .tsv (``sentence<TAB>label`` with a header, a features data file),
.txt (one sentence a line, as predict.py --file and batch_predict read), .jsonl and .parquet
(``id``, ``text``, ``label`` columns). A ``<output>.json`` beside it says what made it.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline import PipelineError, cli
from pipeline.data.splits import read_split
from pipeline.io import atomic_path, sha256_file, write_json
from pipeline.progress import progress_bar

if TYPE_CHECKING:
    from tqdm import tqdm

FORMATS = (".tsv", ".txt", ".jsonl", ".parquet")
CONNECTORS = (" , ", " and ")
PAIR_RATE = 0.2
CHUNK = 65_536


def sentences(source: Path, n: int, seed: int) -> Iterator[tuple[list[str], np.ndarray]]:
    """The corpus as chunks of (texts, labels), at most CHUNK sentences each."""
    split = read_split(source)
    phrases = [" ".join(text.split()) for text in split.texts]  # no tabs or newlines inside
    by_label = [np.flatnonzero(split.labels == k) for k in range(len(split.names))]
    rng = np.random.default_rng(seed)
    for start in range(0, n, CHUNK):
        first = rng.integers(len(phrases), size=CHUNK)  # full draws: N rows are a prefix of more
        paired = rng.random(CHUNK) < PAIR_RATE
        pick = rng.random(CHUNK)
        connector = rng.integers(len(CONNECTORS), size=CHUNK)
        labels = split.labels[first[: min(CHUNK, n - start)]]
        texts = []
        for i in range(len(labels)):
            text = phrases[first[i]]
            if paired[i]:
                pool = by_label[labels[i]]
                second = phrases[pool[int(pick[i] * len(pool))]]
                text = f"{text}{CONNECTORS[connector[i]]}{second}"
            texts.append(text)
        yield texts, labels


def write_corpus(output: Path, n: int, seed: int, source: Path) -> Path:
    """Write `n` sentences recombined from the labeled phrases in `source` to `output` (format
    from its suffix), atomically; return the path."""
    if output.suffix not in FORMATS:
        raise PipelineError(
            f"{output}: unknown corpus format {output.suffix!r}; use one of {', '.join(FORMATS)}"
        )
    if n < 1:
        raise PipelineError(f"--n must be at least 1 (got {n})")
    if not source.is_file():
        raise PipelineError(f"source phrases not found: {source} (pass --source FILE)")
    chunks = sentences(source, n, seed)
    with atomic_path(output) as tmp, progress_bar(total=n, unit="sent", desc="corpus") as bar:
        if output.suffix == ".parquet":
            _write_parquet(tmp, chunks, bar)
        else:
            with open(tmp, "w", encoding="utf-8", newline="\n") as handle:
                if output.suffix == ".tsv":
                    handle.write("sentence\tlabel\n")
                row = 0
                for texts, labels in chunks:
                    handle.writelines(_lines(output.suffix, texts, labels, row))
                    row += len(texts)
                    bar.update(len(texts))
    write_json(
        output.with_name(output.name + ".json"),
        {
            "made_by": "python -m pipeline.scale.corpus",
            "n": n,
            "seed": seed,
            "source": str(source),
            "source_sha256": sha256_file(source),
            "pair_rate": PAIR_RATE,
            "sha256": sha256_file(output),
        },
    )
    return output


def _lines(suffix: str, texts: list[str], labels: np.ndarray, row: int) -> Iterator[str]:
    for i, (text, label) in enumerate(zip(texts, labels.tolist(), strict=True)):
        if suffix == ".txt":
            yield f"{text}\n"
        elif suffix == ".tsv":
            yield f"{text}\t{label}\n"
        else:
            record: dict[str, Any] = {"id": row + i, "text": text, "label": label}
            yield json.dumps(record, ensure_ascii=False) + "\n"


def _write_parquet(path: Path, chunks: Iterator[tuple[list[str], np.ndarray]], bar: tqdm) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([("id", pa.int64()), ("text", pa.string()), ("label", pa.int64())])
    row = 0
    with pq.ParquetWriter(path, schema) as writer:
        for texts, labels in chunks:
            ids = np.arange(row, row + len(texts), dtype=np.int64)
            writer.write_table(pa.table([ids, texts, labels], schema=schema))
            row += len(texts)
            bar.update(len(texts))


def main() -> None:
    """Command line: write a synthetic corpus."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, required=True, help="number of sentences")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--output", type=Path, required=True, help=f"output file: {', '.join(FORMATS)}"
    )
    parser.add_argument(
        "--source",
        type=Path,
        required=True,
        help="labeled phrases to recombine, e.g. GLUE SST-2's train.tsv",
    )
    args = parser.parse_args()
    write_corpus(args.output, args.n, args.seed, args.source)


if __name__ == "__main__":
    cli.run(main)
