"""The Ray engine: the same feature folder as the local path, through killed workers and drivers."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from conftest import ROOT

from pipeline import PipelineError
from pipeline.config import load_config
from pipeline.features import build_features

WORKER_TITLE = b"ray::MapWorker(MapBatches(_Embedder))"
LABELER_TITLE = b"ray::_Labeler"


@pytest.fixture(scope="module")
def local_ray():
    """One quiet local Ray for this module's tests (skips when Ray is not installed)."""
    ray = pytest.importorskip("ray", reason="Ray is not installed: pip install -e '.[scale]'")
    from pipeline.scale import ray_engine

    ray_engine.connect()
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


def arrays(folder: Path) -> dict[str, np.ndarray]:
    return {p.name: np.load(p) for p in sorted(folder.glob("*.npy"))}


def workers(title: bytes = WORKER_TITLE) -> list[int]:
    """Process ids of this test run's Ray actors whose process title starts with `title`.

    The local Ray's raylet is a child of this process and the actors are its children, so
    other Ray clusters on the machine are left alone.
    """
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if (
                proc.name.isdigit()
                and (proc / "cmdline").read_bytes().startswith(title)
                and parent(parent(int(proc.name))) == os.getpid()
            ):
                found.append(int(proc.name))
        except OSError:
            continue  # gone meanwhile
    return found


def parent(pid: int) -> int:
    """The parent process id of `pid` (from /proc/<pid>/stat, after the command in brackets)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat[stat.rindex(")") + 2 :].split()[1])


def test_unknown_engine_is_a_clear_error(tiny_config):
    with pytest.raises(PipelineError, match=r"encoder.runner: unknown value 'spark'.*local, ray"):
        load_config(tiny_config, ["encoder.runner=spark"])


def test_without_ray_the_error_names_the_extra(monkeypatch):
    from pipeline.scale import ray_engine

    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(PipelineError, match=r"pip install -e '\.\[scale\]'"):
        ray_engine.connect()


def test_ray_writes_the_folder_the_local_engine_writes(tiny_config, workdir, local_ray):
    small = "encoder.batch_tokens=32"  # many batches
    local = build_features(
        load_config(tiny_config, [small]), root=workdir / "local", progress=False
    )
    config = load_config(tiny_config, [small, "encoder.runner=ray"])
    ray = build_features(config, root=workdir / "ray", progress=False)
    assert ray.name == local.name  # the engine is not part of the fingerprint
    expected, got = arrays(local), arrays(ray)
    names = {"train.npy", "train_labels.npy", "eval.npy", "eval_labels.npy"}
    assert expected.keys() == got.keys() == names
    for name in expected:
        assert np.array_equal(expected[name], got[name]), name
    meta = json.loads((ray / "meta.json").read_text())
    assert meta["encoder"]["runner"] == "ray"


def test_a_killed_worker_changes_nothing(tiny_encoder, local_ray):
    """SIGKILL the encoder actor while it holds unfinished batches: Ray starts it again and
    runs them again, and the vectors equal those of an uninterrupted local run."""
    from pipeline.config import EncoderConfig
    from pipeline.encoding import batching, encoder
    from pipeline.scale import ray_engine

    tiny = encoder.load_encoder(
        EncoderConfig(name=str(tiny_encoder), pooling="mean", max_length=32, batch_tokens=32)
    )
    texts = [f"{'a rather good film ' * (i % 5)}number {i}" for i in range(250)]
    expected, _ = batching.embed(tiny, texts, progress=False)
    killed: list[int] = []

    def kill_once(done: int, total: int) -> None:
        if not killed:
            assert done < total, "the run finished before the worker could be killed"
            for pid in workers():
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)

    got, _ = batching.embed(
        tiny, texts, progress=False, on_batch=kill_once, run_window=ray_engine.run_window
    )
    assert killed
    assert np.array_equal(expected, got)


def test_the_embedder_loads_its_encoder_on_the_thread_that_runs_its_batches(
    tiny_encoder, local_ray, monkeypatch
):
    """Ray Data builds an actor on one thread and calls it on another: all torch work must be on
    the second (docs/scale.md)."""
    import ray

    from pipeline.config import EncoderConfig
    from pipeline.scale import ray_engine

    loaded_on = []
    load = ray_engine.load_encoder
    monkeypatch.setattr(
        ray_engine, "load_encoder", lambda *a: loaded_on.append(threading.get_ident()) or load(*a)
    )
    ids = np.array([101, 1037, 2204, 2143, 102])  # [CLS] a good film [SEP]
    plan = {"ids": ids, "offsets": [0, 5], "positions": np.array([0]), "bounds": [0, 1]}
    config = EncoderConfig(name=str(tiny_encoder))
    embedder = ray_engine._Embedder(config, tiny_encoder, [ray.put(plan)], threads=None)
    assert loaded_on == []
    with ThreadPoolExecutor(1) as caller:  # as Ray Data's: one thread, not the main one
        first, second = (caller.submit(embedder, {"batch": np.array([0])}).result() for _ in "12")
        caller_thread = caller.submit(threading.get_ident).result()
    assert loaded_on == [caller_thread] and caller_thread != threading.get_ident()  # once, there
    assert first["position"].tolist() == [0] and np.array_equal(first["vector"], second["vector"])


def test_a_killed_driver_resumes_from_its_finished_batches(
    slow_config, tmp_path, local_ray, caplog
):
    """A features driver on Ray, SIGKILLed mid-train, is resumed here (in this process, on the
    same Ray) from its recorded batches, and the folder equals a local run's."""
    limit = "data.limit=250"  # ~75 batches of 32 tokens: seconds, past its first checkpoint
    reference = build_features(
        load_config(slow_config, [limit]), root=tmp_path / "reference", progress=False
    )
    run = tmp_path / "run"
    run.mkdir()
    command = [
        sys.executable,
        "-m",
        "pipeline.features",
        "--config",
        str(slow_config),
        "--set",
        limit,
        "encoder.runner=ray",
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT), "RAY_ADDRESS": local_ray}
    driver = subprocess.Popen(command, cwd=run, env=env, stderr=subprocess.DEVNULL)
    wait_for_progress(run)
    driver.send_signal(signal.SIGSTOP)  # frozen, it is provably mid-run when killed
    [partial] = run.glob("data/features/*.partial")
    progress = json.loads((partial / "progress.json").read_text())
    assert not (partial / "eval.npy").exists(), "the driver got past train before the kill"
    driver.kill()
    driver.wait()
    with caplog.at_level(logging.INFO, logger="pipeline.features"):
        config = load_config(slow_config, [limit, "encoder.runner=ray"])
        resumed = build_features(config, root=run / "data/features", progress=False)
    assert f"train: resuming after batch {progress['done']['train']}" in caplog.text
    assert resumed.name == reference.name
    expected, got = arrays(reference), arrays(resumed)
    assert expected.keys() == got.keys()
    for name in expected:
        assert np.array_equal(expected[name], got[name]), name


def test_batch_predict_on_ray_labels_as_the_local_engine(tiny_model, workdir, local_ray):
    from pipeline.scale.batch_predict import batch_predict

    texts = workdir / "texts.txt"
    texts.write_text("\n".join(["a good film", "", "dull and tedious", "i loved it"] * 5) + "\n")
    local = batch_predict(tiny_model, texts, workdir / "local.parquet", chunk_rows=3)
    ray = batch_predict(tiny_model, texts, workdir / "ray.parquet", ray=True, chunk_rows=3)
    assert pq.read_table(ray).equals(pq.read_table(local))


def test_batch_predict_explain_on_ray_writes_the_local_top_words(tiny_model, workdir, local_ray):
    """The actors explain with the local path's own chunk labeling: the same table, whose top
    words are those of `Classifier.explain`."""
    from pipeline.classifier import Classifier
    from pipeline.scale.batch_predict import batch_predict
    from pipeline.tint import top_words

    texts = ["a good film , i loved it", "", "dull , cold and tedious", "fun"]
    path = workdir / "texts.txt"
    path.write_text("\n".join(texts) + "\n")
    local = batch_predict(tiny_model, path, workdir / "local.parquet", chunk_rows=3, explain=True)
    ray = batch_predict(
        tiny_model, path, workdir / "ray.parquet", ray=True, chunk_rows=3, explain=True
    )
    table = pq.read_table(ray)
    assert table.equals(pq.read_table(local))
    rows = Classifier.load(tiny_model).explain(texts)
    got = [[w["word"] for w in words] for words in table["top_words"].to_pylist()]
    assert got == [[w["word"] for w in top_words(row.get("words", []))] for row in rows]
    assert got[1] == [] and len(got[0]) == 5


def test_a_killed_labeler_changes_no_label(tiny_model, workdir, local_ray):
    """SIGKILL the Classifier actor with chunks in flight: the same tables, in input order."""
    from pipeline.data.reader import Chunk
    from pipeline.scale import ray_engine
    from pipeline.scale.batch_predict import label_columns, predict_parts_local

    chunks = [
        Chunk(i, 4 * i, [f"a good film {i}", "", "i hated it", "fun"], None) for i in range(8)
    ]
    expected, got, killed = [], [], []
    predict_parts_local(tiny_model, chunks, lambda c, table: expected.append(table), label_columns)

    def write(chunk: Chunk, table: dict[str, list]) -> None:
        if not killed:
            killed.extend(workers(LABELER_TITLE))
            for pid in killed:
                os.kill(pid, signal.SIGKILL)
        got.append((chunk.index, table))

    ray_engine.predict_parts(tiny_model, chunks, write, label_columns)
    assert killed
    assert [index for index, _ in got] == list(range(8))
    assert [table for _, table in got] == expected


def wait_for_progress(cwd: Path, timeout: float = 120) -> dict:
    """Block until a run in `cwd` has recorded finished train batches; return its progress."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in cwd.glob("data/features/*.partial/progress.json"):
            try:
                progress = json.loads(path.read_text())
            except ValueError:
                continue  # caught mid-write
            if progress["done"].get("train", 0) > 0:
                return progress
        time.sleep(0.05)
    raise AssertionError("the run recorded no progress")
