"""What a faster precision costs in accuracy, measured on a CPU that cannot run it fast.

bf16 and int8 are fast only on CPUs with AVX512-BF16 (or AMX) and VNNI. Without them (an AVX2-only
EPYC: fp32 matmuls at 93 GFLOP/s, bf16 at 16, int8 at 2 GOP/s) the GLUE SST-2 features take hours
in bf16 and days in int8. But a precision's vectors do not depend on which kernel multiplies the
matrices, so this study runs the precision's own model and swaps only its matrix products for
fp32 ones on the same values:

- bf16 (autocast, its element-wise work still in bf16): each bf16 product is computed in fp32
  from its bf16 inputs and rounded to bf16 once, as the bf16 kernels do (they accumulate in fp32);
- int8 (torchao's per-token layers, smoothed and quantized as for a CPU with VNNI, so without the
  reduced range an AVX2 CPU needs): each `torch._int_mm` is computed in fp32 from its int8 inputs
  and rounded to int32, exact while a sum stays under 2^24 (torchao turns the int32 result into
  fp32 next anyway).

It then runs features, train and evaluate for the emulated precision and for fp32 (the real one),
into the study's own folders (data/features-emulated/, models/emulated/, reports/emulated/; fp32
reads the real feature cache), and compares dev accuracy and each vector's cosine to fp32. A check
runs the precision's real kernels on the first --check dev sentences against the emulation.

    make precision CONFIG=configs/sst2-minilm.yaml DATA=../shared/data/sst2-glue \\
        SET="encoder.precision=int8"
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from pipeline import PipelineError, cli
from pipeline.config import Config, EncoderConfig
from pipeline.data.splits import Split, load_splits
from pipeline.encoding import row_cosines
from pipeline.encoding.batching import embed
from pipeline.encoding.encoder import Encoder, load_encoder
from pipeline.evaluate import evaluate
from pipeline.fast.recipe import recipe
from pipeline.feature_cache import adopt, features_dir, fingerprint_inputs, input_stamps, request
from pipeline.features import FEATURES_ROOT, _extract, build_features, load_arrays
from pipeline.io import write_json, write_text
from pipeline.probe import load_probe
from pipeline.train import train

log = logging.getLogger(__name__)

FEATURES = Path("data/features-emulated")
MODELS = Path("models/emulated")
REPORTS = Path("reports/emulated")
EMULATED = ("bf16", "int8")
# load_encoder's settings as on a CPU that runs the precision natively: torch's linear layers
# (oneDNN's prepacked ones would skip the emulation) and int8 without the reduced range of CPUs
# without VNNI
FAST_CPU = {"prepack": False, "int8_reduce_range": False}
aten = torch.ops.aten
BF16_PRODUCTS = {
    aten.linear.default,
    aten.matmul.default,
    aten.mm.default,
    aten.addmm.default,
    aten.bmm.default,
    aten.baddbmm.default,
}


class EmulatedMatmuls(TorchDispatchMode):
    """Runs bf16 and int8 matrix products as fp32 ones on the same values; counts them."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        """Swap a bf16 product or `_int_mm` for its fp32 twin; run anything else as it is."""
        kwargs = kwargs or {}
        if func is aten._int_mm.default:
            self.calls += 1
            a, b = args
            return torch.mm(a.float(), b.float()).round_().to(torch.int32)
        if func in BF16_PRODUCTS and any(_is_bf16(arg) for arg in args):
            self.calls += 1
            wide = [arg.float() if _is_bf16(arg) else arg for arg in args]
            return func(*wide, **kwargs).to(torch.bfloat16)
        return func(*args, **kwargs)


def _is_bf16(value: Any) -> bool:
    return isinstance(value, torch.Tensor) and value.dtype == torch.bfloat16


def load_as_on_a_fast_cpu(config: EncoderConfig) -> Encoder:
    """The encoder loaded with `FAST_CPU`'s settings and not compiled (compiled code would skip
    the emulation; int8's compile only fuses the same math), so it runs eagerly."""
    with torch._dynamo.config.patch(disable=True):
        return load_encoder(config, **FAST_CPU)


@contextlib.contextmanager
def emulated() -> Iterator[EmulatedMatmuls]:
    """The matrix products emulated (and no warning that they are slow); for an encoder from
    `load_as_on_a_fast_cpu`."""
    device_log = logging.getLogger("pipeline.encoding.device")
    level = device_log.level
    device_log.setLevel(logging.ERROR)
    try:
        with EmulatedMatmuls() as mode:
            yield mode
    finally:
        device_log.setLevel(level)


def emulated_features(config: Config, splits: dict[str, Split]) -> tuple[Path, int]:
    """The emulated precision's features under FEATURES and the matmuls emulated (0 when cached).

    The folder is named and recorded as train and evaluate look up `config`'s features (by its
    fingerprint on this CPU, by its request), so they find it; its meta.json's inputs hold the
    recipe that ran (`FAST_CPU`'s). Only the study writes under FEATURES.
    """
    precision = config.encoder.precision
    inputs = fingerprint_inputs(config, splits)
    folder = features_dir(inputs, FEATURES)
    inputs[precision] = recipe(precision, torch.device("cpu"), **FAST_CPU)
    wanted, current = request(config), input_stamps(config)
    if adopt(folder, wanted, current):
        return folder, 0
    with emulated() as mode:
        encoder = load_as_on_a_fast_cpu(config.encoder)
        recorded = {"request": wanted, "stamps": {"inputs": current, "arrays": None}}
        _extract(encoder, splits, inputs, folder, progress=True, recorded=recorded)
    return folder, mode.calls


def cosines(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Mean, 1st percentile and minimum of the row-wise cosine between `a` and `b`."""
    cos = row_cosines(a, b)
    return {"mean": float(cos.mean()), "p1": float(np.percentile(cos, 1)), "min": float(cos.min())}


def check(config: Config, texts: list[str]) -> dict[str, Any]:
    """The precision's real kernels against the emulation and fp32, on `texts`."""
    fp32, _ = embed(load_encoder(_fp32(config).encoder), texts, progress=False)
    encoder = load_as_on_a_fast_cpu(config.encoder)
    started = time.perf_counter()
    real, _ = embed(encoder, texts, progress=False)
    real_s = time.perf_counter() - started
    with emulated() as mode:
        started = time.perf_counter()
        emulation, _ = embed(encoder, texts, progress=False)
    if not mode.calls:
        raise PipelineError(f"nothing to emulate: {config.encoder.precision} ran no matmul")
    return {
        "sentences": len(texts),
        "seconds": {"real": real_s, "emulated": time.perf_counter() - started},
        "emulated~real": cosines(emulation, real),
        "real~fp32": cosines(real, fp32),
        "emulated~fp32": cosines(emulation, fp32),
    }


def precision_study(config: Config, check_sentences: int = 100) -> dict[str, Any]:
    """Features, train and evaluate for fp32 and the emulated precision; write the comparison."""
    precision = config.encoder.precision
    if precision not in EMULATED:
        raise PipelineError(
            f"encoder.precision={precision}: the study emulates {' or '.join(EMULATED)} "
            '(add SET="encoder.precision=int8")'
        )
    if config.encoder.device == "cuda":
        raise PipelineError("the precision study runs on the CPU (encoder.device=cpu or auto)")
    config = dataclasses.replace(config, encoder=dataclasses.replace(config.encoder, device="cpu"))
    splits = load_splits(config.data)
    reference = _fp32(config)
    started = time.perf_counter()
    fp32_folder = build_features(reference, FEATURES_ROOT, splits=splits)
    folder, calls = emulated_features(config, splits)
    encoded_s = time.perf_counter() - started
    metrics, right = {}, {}
    for run_config, features in ((reference, fp32_folder), (config, folder)):
        name = run_config.encoder.precision
        train(run_config, features.parent, MODELS)
        metrics[name] = evaluate(run_config, features.parent, MODELS, REPORTS)
        x, y = load_arrays(features, "eval")
        right[name] = load_probe(MODELS / run_config.run)[0].predict_proba(x).argmax(1) == y
    report = {
        "run": config.run,
        "encoder": config.encoder.name,
        "precision": precision,
        "features": {"fp32": str(fp32_folder), precision: str(folder)},
        "emulated_matmuls": calls,
        "cosine_to_fp32": {
            role: cosines(load_arrays(folder, role)[0], load_arrays(fp32_folder, role)[0])
            for role in splits
        },
        "accuracy": {p: m["classifier"]["accuracy"] for p, m in metrics.items()},
        "C": {p: m["C"] for p, m in metrics.items()},
        "cv_accuracy": {p: m["cv_accuracy"] for p, m in metrics.items()},
        "right_in_one_only": {  # dev sentences one labels right and the other wrong
            "fp32": int((right["fp32"] & ~right[precision]).sum()),
            precision: int((right[precision] & ~right["fp32"]).sum()),
        },
        "check": check(config, splits["eval"].texts[:check_sentences]) if check_sentences else None,
        "seconds": {"features": encoded_s, "all": time.perf_counter() - started},
    }
    report["cost_points"] = 100 * (report["accuracy"]["fp32"] - report["accuracy"][precision])
    out = REPORTS / config.run
    write_json(out / "precision.json", report)
    write_text(out / "precision.md", markdown(report))
    print(markdown(report))
    return report


def markdown(report: dict[str, Any]) -> str:
    """The study's result as a Markdown table."""
    p, cos = report["precision"], report["cosine_to_fp32"]
    lines = [
        f"{report['encoder']}, {p} (matmuls emulated in fp32) against fp32, run {report['run']}",
        "",
        f"| precision | dev accuracy | C | CV accuracy | cosine to fp32 ({' / '.join(cos)}) |",
        "|---|---|---|---|---|",
    ]
    for name in ("fp32", p):
        cell = " / ".join(_cos(c, 5) for c in cos.values()) if name == p else "1"
        lines.append(
            f"| {name} | {report['accuracy'][name]:.4f} | {report['C'][name]:g} "
            f"| {report['cv_accuracy'][name]:.4f} | {cell} |"
        )
    cost, only = report["cost_points"], report["right_in_one_only"]
    lines += [
        "",
        f"{p} costs {cost:.2f} points of dev accuracy (negative: it gains): fp32 alone labels "
        f"{only['fp32']} dev sentences right, {p} alone {only[p]} (a paired difference that "
        f"chance alone moves by about ±{2 * math.sqrt(only['fp32'] + only[p]):.0f} sentences).",
    ]
    if report["check"]:
        c = report["check"]
        lines.append(
            f"Check on {c['sentences']} dev sentences, mean (min) cosine: emulated to real {p} "
            f"{_cos(c['emulated~real'])}, real {p} to fp32 {_cos(c['real~fp32'])}, emulated to "
            f"fp32 {_cos(c['emulated~fp32'])}."
        )
    return "\n".join(lines) + "\n"


def _cos(c: dict[str, float], digits: int = 7) -> str:
    """A cosine summary: mean (min)."""
    return f"{c['mean']:.{digits}f} ({c['min']:.{digits}f})"


def _fp32(config: Config) -> Config:
    """`config` with fp32 encoding, run <run>-fp32."""
    return dataclasses.replace(
        config,
        run=f"{config.run}-fp32",
        encoder=dataclasses.replace(config.encoder, precision="fp32"),
    )


def main() -> None:
    """Command line: the precision study for a config."""
    parser = cli.stage_parser(__doc__)
    parser.add_argument(
        "--check",
        type=int,
        default=100,
        metavar="N",
        help="dev sentences to run with the real kernels too (slow on this CPU; 0: none)",
    )
    args = parser.parse_args()
    precision_study(cli.config_from_args(args), args.check)


if __name__ == "__main__":
    cli.run(main)
