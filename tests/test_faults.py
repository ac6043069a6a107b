"""Faults: killed runs resume bit-identically, overlapping runs are safe, Ctrl-C is clean."""

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, run_cli

from pipeline import PipelineError
from pipeline.config import load_config
from pipeline.features import build_features, load_features


def default_sigint() -> None:
    """Give the child Ctrl-C's default action: a shell running tests in the background (CI, a
    script with `&`) hands SIGINT down ignored, and Python then never raises KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture(autouse=True)
def one_torch_thread(monkeypatch):
    """The runs these tests start use one torch thread: the tiny encoder gains nothing from two,
    and two OpenMP threads stall whenever another process takes a core (a killed-and-resumed run
    went past its 300 s while a features run held the machine)."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


def start_features(config: Path, cwd: Path) -> subprocess.Popen:
    env = {"HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    env["OMP_NUM_THREADS"] = os.environ["OMP_NUM_THREADS"]
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline.features", "--config", str(config)],
        cwd=cwd,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_sigint,
    )


def wait_for_progress(cwd: Path, timeout: float = 120) -> dict:
    """Block until a run in `cwd` has recorded finished batches; return its progress."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in cwd.glob("data/features/*.partial/progress.json"):
            progress = json.loads(path.read_text())
            if progress["done"].get("train", 0) > 0:
                return progress
        time.sleep(0.05)
    raise AssertionError("the run recorded no progress")


def start_paused_mid_train(config: Path, cwd: Path) -> subprocess.Popen:
    """A features run frozen (SIGSTOP) while it is provably still encoding the train split.

    Frozen, it cannot move on, so the signal a test sends next lands mid-run by construction:
    progress is recorded and the eval array, created only once train is complete, does not exist
    yet. If a busy machine let the run get past that point before the freeze, it starts again.
    """
    for _ in range(3):
        process = start_features(config, cwd)
        wait_for_progress(cwd)
        process.send_signal(signal.SIGSTOP)
        [partial] = cwd.glob("data/features/*.partial")
        if not (partial / "eval.npy").exists():
            return process
        process.kill()
        process.communicate()
        shutil.rmtree(cwd / "data")
    raise AssertionError("three runs got past the train split before they could be paused")


def resume_with(process: subprocess.Popen, sig: signal.Signals) -> None:
    """Deliver `sig` to a paused run, then let it continue (SIGKILL needs no continuing)."""
    process.send_signal(sig)
    process.send_signal(signal.SIGCONT)


def arrays(folder: Path) -> dict[str, np.ndarray]:
    return {p.name: np.load(p) for p in sorted(folder.glob("*.npy"))}


def test_sigkill_mid_run_then_rerun_resumes_bit_identical(slow_config, tmp_path):
    reference_dir, killed_dir = tmp_path / "reference", tmp_path / "killed"
    reference_dir.mkdir()
    killed_dir.mkdir()
    assert (
        run_cli(
            "-m", "pipeline.features", "--config", str(slow_config), cwd=reference_dir
        ).returncode
        == 0
    )
    process = start_paused_mid_train(slow_config, killed_dir)
    resume_with(process, signal.SIGKILL)
    process.communicate()
    assert process.returncode == -signal.SIGKILL
    assert not list(killed_dir.glob("data/features/*/meta.json"))
    result = run_cli("-m", "pipeline.features", "--config", str(slow_config), cwd=killed_dir)
    assert result.returncode == 0, result.stderr
    assert "train: resuming after batch" in result.stderr
    [reference] = [p for p in (reference_dir / "data/features").iterdir() if p.is_dir()]
    [resumed] = [p for p in (killed_dir / "data/features").iterdir() if p.is_dir()]
    assert resumed.name == reference.name
    expected, got = arrays(reference), arrays(resumed)
    assert (
        expected.keys()
        == got.keys()
        == {"train.npy", "train_labels.npy", "eval.npy", "eval_labels.npy"}
    )
    for name in expected:
        assert np.array_equal(expected[name], got[name]), name


def test_two_runs_at_once_build_the_cache_once(slow_config, workdir):
    first, second = start_features(slow_config, workdir), start_features(slow_config, workdir)
    errors = [first.communicate(timeout=300)[1], second.communicate(timeout=300)[1]]
    assert first.returncode == second.returncode == 0, errors
    assert sum("features: wrote" in e for e in errors) == 1
    assert sum("cache hit" in e for e in errors) == 1
    _, meta = load_features(load_config(slow_config))
    assert meta["complete"] and not list(workdir.glob("data/features/*.partial"))


def test_ctrl_c_is_one_line_and_exit_130(slow_config, workdir):
    process = start_paused_mid_train(slow_config, workdir)
    resume_with(process, signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130
    assert "Traceback" not in stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("interrupted; run features again to resume from")
    assert not list(workdir.glob("data/features/*/meta.json"))


def test_unwritable_output_names_the_path(tiny_config, workdir):
    (workdir / "data").write_text("a file where the features folder should be")
    with pytest.raises(PipelineError, match="cannot create data/features"):
        build_features(load_config(tiny_config), progress=False)


def test_disk_full_names_the_path(tiny_config, workdir, monkeypatch):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np.lib.format, "open_memmap", full)
    with pytest.raises(PipelineError, match=r"cannot write features to .*\.partial: No space"):
        build_features(load_config(tiny_config), progress=False)
    assert not list(workdir.glob("data/features/*/meta.json"))
