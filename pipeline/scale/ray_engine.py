"""The Ray engine: features (`encoder.runner=ray`) and `batch_predict --ray` on Ray.

The driver tokenizes and cuts the batches exactly as the local path does (`embed` in
`pipeline.encoding.batching`, a window at a time), puts a window's token ids and batches into Ray's
object store once, and sends only batch numbers through `map_batches`. Each actor loads the encoder
once and runs its batches with the local path's `run_batches`; the driver writes the vectors back at
their input positions, in batch order, so the output and its resume points are those of `embed`.
Batch prediction streams its chunks to Ray actors that each hold one Classifier (`predict_parts`).

Ray comes from the optional extra: `pip install -e '.[scale]'`. With RAY_ADDRESS set the engine
joins that cluster, else it starts a quiet local one.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from pipeline import PipelineError
from pipeline.config import EncoderConfig
from pipeline.data.reader import Chunk
from pipeline.encoding.batching import run_batches
from pipeline.encoding.encoder import Encoder, load_encoder

if TYPE_CHECKING:
    from pipeline.scale.batch_predict import Label


def connect() -> None:
    """Join the cluster at RAY_ADDRESS, or start a local Ray: no dashboard, and the workers' logs
    stay in Ray's log folder instead of the driver's terminal."""
    ray = _ray()
    if not ray.is_initialized():
        ray.init(include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True  # vectors come back in batch order
    context.enable_progress_bars = False  # the driver shows one bar in sentences
    context.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)  # "bars are off"


def run_window(
    encoder: Encoder, ids: list[np.ndarray], batches: list[np.ndarray], skip: int
) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """`embed`'s `run_window` on a Ray Data actor pool: a window's batches from `skip` on, the
    same batches, output and resume points as the local path; yields (batches done, positions,
    vectors) in order.

    The token ids and batches go into the object store once; the rows are batch numbers.
    """
    connect()
    ray = _ray()
    bounds = np.cumsum([0, *map(len, batches)])
    plan = ray.put(
        {
            "ids": np.concatenate(ids),
            "offsets": np.cumsum([0, *map(len, ids)]),
            "positions": np.concatenate(batches),
            "bounds": bounds,
        }
    )
    pool = _pool(encoder.config.device)
    vectors = ray.data.from_items([{"batch": b} for b in range(skip, len(batches))]).map_batches(
        _Embedder,
        fn_constructor_kwargs={
            "config": encoder.config,
            "folder": encoder.folder,
            "plan": [plan],  # in a list, so the actor gets the reference and reads it zero-copy
            "threads": pool.threads,
        },
        batch_size=1,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=pool.size),
        num_cpus=pool.num_cpus,
        num_gpus=pool.num_gpus,
    )
    rows = int(bounds[skip])
    for block in vectors.iter_batches(batch_size=None, batch_format="numpy"):
        rows += len(block["position"])
        done = int(np.searchsorted(bounds, rows, side="right")) - 1
        yield done, block["position"], block["vector"]


def predict_parts(
    model_dir: Path,
    chunks: Iterable[Chunk],
    write: Callable[[Chunk, dict[str, list]], None],
    label: Label,
    engine: str = "auto",
) -> None:
    """`batch_predict --ray`: Ray actors, each holding one Classifier on `engine`, label chunks
    with `label` (batch_predict's `label_columns`, as the local path does).

    Chunks stream from the driver, at most two per actor in flight, so memory stays flat;
    `write(chunk, columns)` gets them back in input order. A killed actor is started again and
    labels its chunks again. The model folder (and its encoder) must be at the same path on
    every node of a cluster. Plain Ray actors, not Ray Data: the chunks come one by one from
    batch_predict's streaming reader, where a Ray Data dataset wants its inputs listed up front.
    """
    connect()
    ray = _ray()
    pool = _pool("auto")
    labeler = ray.remote(
        num_cpus=pool.num_cpus, num_gpus=pool.num_gpus, max_restarts=-1, max_task_retries=-1
    )(_Labeler)
    actors = [
        labeler.remote(model_dir.resolve(), pool.threads, engine, label) for _ in range(pool.size)
    ]
    in_flight: deque[tuple[Chunk, Any]] = deque()
    for n, chunk in enumerate(chunks):
        in_flight.append((chunk, actors[n % len(actors)].label.remote(chunk.texts)))
        if len(in_flight) >= 2 * len(actors):
            done, table = in_flight.popleft()
            write(done, ray.get(table))
    for done, table in in_flight:
        write(done, ray.get(table))


class _Labeler:
    """A Ray actor that loads one Classifier and labels chunks of texts with it and `label`."""

    def __init__(self, model_dir: Path, threads: int | None, engine: str, label: Label) -> None:
        from pipeline.classifier import Classifier

        if threads:
            torch.set_num_threads(threads)
        self.classifier = Classifier.load(model_dir, engine)
        self.to_columns = label

    def label(self, texts: list[Any]) -> dict[str, list]:
        """The result columns for these texts (`label`'s)."""
        return self.to_columns(self.classifier, texts)


class _Embedder:
    """A Ray Data actor: loads the encoder once, then turns batch numbers into vectors.

    Ray Data builds the actor on its main thread and calls it on another one; the encoder loads
    on the first call, so that all its torch work runs on that one thread (a second OpenMP team,
    made by loading on the main thread, slowed every batch: docs/scale.md).
    """

    def __init__(
        self, config: EncoderConfig, folder: Path, plan: list[Any], threads: int | None
    ) -> None:
        self.config, self.folder, self.threads = config, folder, threads
        self.encoder: Encoder | None = None
        self.plan = _ray().get(plan[0])
        self.ids = np.split(self.plan["ids"], self.plan["offsets"][1:-1])  # per sentence (views)

    def __call__(self, rows: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Vectors and input positions of the batches named in `rows["batch"]`."""
        if self.encoder is None:
            if self.threads:
                torch.set_num_threads(self.threads)
            self.encoder = load_encoder(self.config, self.folder)
        order, bounds = self.plan["positions"], self.plan["bounds"]
        batches = [order[bounds[b] : bounds[b + 1]] for b in rows["batch"]]
        done = list(run_batches(self.encoder, self.ids, batches))
        return {
            "position": np.concatenate([positions for _, positions, _ in done]),
            "vector": np.concatenate([vectors for _, _, vectors in done]),
        }


@dataclass
class _Pool:
    """How many actors, and what each one takes: CPUs (and torch threads) or one GPU."""

    size: int
    num_cpus: int
    num_gpus: int
    threads: int | None


def _pool(device: str) -> _Pool:
    """The actor pool for the cluster Ray is connected to.

    One actor per GPU when the cluster has GPUs (and `device` is not cpu); else CPU actors that
    each take the CPUs of the smallest node, with that many torch threads.
    """
    ray = _ray()
    gpus = int(ray.cluster_resources().get("GPU", 0))
    if gpus and device != "cpu":
        return _Pool(size=gpus, num_cpus=1, num_gpus=1, threads=None)
    cpus = [node["Resources"].get("CPU", 0) for node in ray.nodes() if node["Alive"]]
    share = max(1, int(min(cpus, default=1)))
    return _Pool(size=max(1, int(sum(cpus)) // share), num_cpus=share, num_gpus=0, threads=share)


def _ray() -> Any:
    """The `ray` module, or a clear error naming the extra that installs it."""
    try:
        import ray
        import ray.data
    except ImportError:
        raise PipelineError(
            "encoder.runner=ray needs Ray: pip install -e '.[scale]' (make setup installs it)"
        ) from None
    return ray
