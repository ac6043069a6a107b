"""The feature-extraction benchmark's report as markdown (reports/bench/<mode>.md)."""

from __future__ import annotations

from typing import Any

RATE_NAMES = {
    "fp32": "fp32 on oneDNN's prepacked weights",
    "fp32 unpacked": "fp32 in `F.linear` (unprepacked)",
    "bf16": "bf16 prepacked",
    "bf16 unpacked": "bf16 in `F.linear`",
    "int8": "int8",
}


def markdown(report: dict[str, Any]) -> str:
    """The report as markdown: one table per encoder, with its context."""
    m = report["machine"]
    lines = [
        f"Machine: {m['cpu']}, {m['cores']} cores, torch {m['torch']} ({m['threads']} threads), "
        f"no GPU; load average {m['loadavg_1min']:.1f} at the start, "
        f"{m['loadavg_1min_end']:.1f} at the end (a shared machine).",
        f"Texts: {report['source']}; median of {report['repeats']} runs after a warm-up (the "
        "blog's way: one run on the warm model, it is slow). 'first s': the warm-up run (int8: "
        "quantize + compile + run). Matmul rates in GFLOP/s (int8: GOP/s).",
    ]
    for name, e in report["encoders"].items():
        r = e["matmul_gflops"]
        lines += [
            "",
            f"### {name}: {e['texts']:,} texts, {e['real_tokens']:,} real tokens, "
            f"{e['flops_per_real_token'] / 1e6:.1f} MFLOP per real token",
            "",
            "Matmul rate on its shapes: "
            + "; ".join(f"{RATE_NAMES[key]} {rate:.0f}" for key, rate in r.items())
            + ". Each row is measured against the kernel it runs (prepacked where the encoder "
            "runs packed batches).",
            "",
            "| way | texts/s | real tokens/s | s (min-max) | first s | padding | effective GFLOP/s "
            "| ÷ matmul rate | x fp32 | x encode() |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for way, w in e["ways"].items():
            first = f"{w['first_s']:.1f}" if "first_s" in w else "-"
            lines.append(
                f"| {way} | {w['texts_per_s']:,.0f} | {w['real_tokens_per_s']:,.0f} | "
                f"{w['median_s']:.2f} ({w['min_s']:.2f}-{w['max_s']:.2f}) | {first} | "
                f"{w['padding']:.2f} | {w['effective_gflops']:.0f} | {w['of_matmul_rate']:.2f} | "
                f"{w['x_fp32']:.2f} | {w['x_encode']:.2f} |"
            )
    lines += [f"\nSkipped {name}: {why}" for name, why in report["skipped"].items()]
    if "glue_features_s" in report:
        lines += ["", "Cold features stage, all of GLUE SST-2 train + dev, wall s:", ""]
        precisions = list(next(iter(report["glue_features_s"].values()), {}))
        lines += [f"| encoder | {' | '.join(precisions)} |", "|---|" + "---:|" * len(precisions)]
        for name, s in report["glue_features_s"].items():
            lines.append(f"| {name} | " + " | ".join(f"{s[p]:.0f}" for p in precisions) + " |")
    if "peak_rss_mb" in report:
        rss = report["peak_rss_mb"]
        lines += [
            "",
            f"Peak RSS of the features stage: {rss['10k']:.0f} MB for 10k sentences, "
            f"{rss['67k']:.0f} MB for 67k.",
        ]
    if "predict" in report:
        p = report["predict"]
        lines += [
            "",
            f"predict.py wall time: {p['one_sentence_s']:.2f} s for one sentence (cold); "
            f"{p['file_1000_s']:.2f} s for a 1,000-line file "
            f"({p['file_1000_texts_per_s']:.0f} texts/s including start-up).",
        ]
    return "\n".join(lines) + "\n"
