"""The pooling/layer study: which vector of a frozen encoder works best for a linear classifier?

One pass over the data caches, per sentence, the [CLS] and the masked mean of every hidden layer
(embeddings = layer 0), the pooler output where the model has one, and the attention-guided
"trend" vector with its control. Every variant is then built from those arrays, and a logistic
regression with C chosen by cross-validation on train is scored on the eval split. The results
go to ``reports/study/<run>.json``, a markdown table and a plot of dev accuracy by layer
(``docs/study.md`` holds the measured ones).

The attention-pair ("trend") vector, from the article the project started from: in each layer,
sum the attention every word token receives over heads and query positions ([CLS], [SEP] and a
final punctuation token left out); the *anchor* is the token that leads in most layers; among the
layers where the anchor leads, its *partner* is the other token that leads most often there. A
token's trend vector is log(last-layer vector / layer-0 vector), elementwise, with NaN (negative
ratios) set to 0; the sentence vector is anchor + partner. The control is the plain mean of the
anchor's and partner's last-layer vectors.

    make study CONFIG=configs/sst2-minilm.yaml DATA=../shared/data/sst2-glue
"""

from __future__ import annotations

import logging
import string
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipeline import cli, plots
from pipeline.config import Config
from pipeline.data.splits import load_splits
from pipeline.encoding.batching import plan, windows
from pipeline.encoding.encoder import Encoder, load_encoder, pad, pool_tokens
from pipeline.io import atomic_path, write_json, write_text
from pipeline.progress import progress_bar
from pipeline.train import logistic_regression_cv

log = logging.getLogger(__name__)

STUDY_ROOT = Path("reports/study")


def attention_pair(
    first: torch.Tensor, last: torch.Tensor, attentions: torch.Tensor, words: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Trend vectors (anchor + partner) and the control (their last-layer mean), per sentence.

    first, last: (B, T, D) layer-0 and last-layer vectors; attentions: (B, L, H, T, T);
    words: (B, T) bool, the tokens that may lead.
    """
    received = attentions.sum(dim=(2, 3))  # (B, L, T): attention each key token receives
    received = received.masked_fill(~words[:, None, :], -torch.inf)
    leaders = received.argmax(dim=-1)  # (B, L)
    anchor = _mode(leaders, first.shape[1])
    runner_up = received.scatter(
        -1, anchor[:, None, None].expand(-1, received.shape[1], 1), -torch.inf
    ).argmax(dim=-1)
    anchor_leads = leaders == anchor[:, None]
    alone = words.sum(dim=1) < 2  # a single word token is its own partner
    partner = torch.where(alone, anchor, _mode(runner_up, first.shape[1], anchor_leads))
    rows = torch.arange(first.shape[0])
    trend = torch.nan_to_num(torch.log(last / first), nan=0.0, posinf=0.0, neginf=0.0)
    pair = trend[rows, anchor] + trend[rows, partner]
    control = (last[rows, anchor] + last[rows, partner]) / 2
    return pair, control


def _mode(values: torch.Tensor, size: int, keep: torch.Tensor | None = None) -> torch.Tensor:
    """Most frequent value per row (ties: the smallest), counting only where `keep` is True."""
    weights = torch.ones_like(values) if keep is None else keep.long()
    counts = torch.zeros(values.shape[0], size, dtype=torch.long)
    counts.scatter_add_(1, values, weights)
    return counts.argmax(dim=1)


def word_mask(encoder: Encoder, ids: list[np.ndarray], width: int) -> torch.Tensor:
    """(B, width) True for word tokens: not [CLS]/[SEP]/padding, not a final punctuation token."""
    mask = torch.zeros(len(ids), width, dtype=torch.bool)
    for i, row in enumerate(ids):
        end = len(row) - 1  # the [SEP]
        last = encoder.tokenizer.convert_ids_to_tokens(int(row[end - 1])) if end > 1 else ""
        if end > 2 and last and all(c in string.punctuation for c in last):
            end -= 1
        mask[i, 1:end] = True
    return mask


def extract(encoder: Encoder, texts: list[str]) -> dict[str, np.ndarray]:
    """Every layer's cls and mean, the pooler output if any, and the attention pair, per text:
    `embed`'s windows and batches, with the whole model output kept for each batch."""
    layers, dim = encoder.model.config.num_hidden_layers + 1, encoder.model.config.hidden_size
    out = {
        "cls": np.empty((len(texts), layers, dim), np.float32),
        "mean": np.empty((len(texts), layers, dim), np.float32),
        "attention_pair": np.empty((len(texts), dim), np.float32),
        "pair_control": np.empty((len(texts), dim), np.float32),
    }
    has_pooler = getattr(encoder.model, "pooler", None) is not None
    if has_pooler:
        out["pooler"] = np.empty((len(texts), dim), np.float32)
    with torch.inference_mode(), progress_bar(total=len(texts), unit="sent", desc="study") as bar:
        for start, tokens in windows(encoder, texts):
            for batch in plan(tokens, encoder.config.batch_tokens):
                rows = [tokens.ids[i] for i in batch]
                input_ids, mask = pad(rows, encoder.tokenizer.pad_token_id)
                output = encoder.model(
                    input_ids=input_ids.to(encoder.device),
                    attention_mask=mask.to(encoder.device),
                    output_hidden_states=True,
                    output_attentions=True,
                )
                hidden = torch.stack(output.hidden_states, dim=1).cpu()  # (B, layers, T, D)
                at = start + batch
                out["cls"][at] = pool_tokens(hidden, mask, "cls").numpy()
                out["mean"][at] = pool_tokens(hidden, mask, "mean").numpy()
                words = word_mask(encoder, rows, input_ids.shape[1])
                attentions = torch.stack(output.attentions, dim=1).cpu()
                pair, control = attention_pair(hidden[:, 0], hidden[:, -1], attentions, words)
                out["attention_pair"][at], out["pair_control"][at] = pair.numpy(), control.numpy()
                if has_pooler:
                    out["pooler"][at] = output.pooler_output.cpu().numpy()
                bar.update(len(batch))
    return out


def variants(arrays: dict[str, np.ndarray]) -> dict[str, tuple[str, np.ndarray]]:
    """name -> (layers used, feature matrix) for every variant of the study."""
    cls, mean = arrays["cls"], arrays["mean"]
    top = cls.shape[1] - 1
    found = {"cls, last layer": (str(top), cls[:, -1]), "mean, last layer": (str(top), mean[:, -1])}
    if "pooler" in arrays:
        found["pooler"] = (str(top), arrays["pooler"])
    for layer in range(top + 1):
        found[f"cls, layer {layer}"] = (str(layer), cls[:, layer])
        found[f"mean, layer {layer}"] = (str(layer), mean[:, layer])
    found["mean, last 4 layers concatenated"] = (
        f"{top - 3}-{top}",
        mean[:, -4:].reshape(len(mean), -1),
    )
    found["mean, average of all layers"] = (f"0-{top}", mean.mean(axis=1))
    found["cls + mean, last layer"] = (str(top), np.hstack([cls[:, -1], mean[:, -1]]))
    found["attention-pair (trend)"] = (f"0, {top}", arrays["attention_pair"])
    found["anchor+partner mean (control)"] = (str(top), arrays["pair_control"])
    return found


def score(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_eval: np.ndarray,
    y_eval: np.ndarray,
    config: Config,
) -> dict[str, float]:
    """C by cross-validation on train (as the train stage does), then accuracy on eval."""
    search = logistic_regression_cv(config).fit(x_train, y_train)
    return {
        "C": search.best_params_["logisticregression__C"],
        "cv_accuracy": float(search.best_score_),
        "accuracy": float(search.score(x_eval, y_eval)),
    }


def study(config: Config, out_root: Path = STUDY_ROOT) -> dict[str, Any]:
    """Extract once, score every variant, write the JSON and markdown results."""
    splits = load_splits(config.data)
    encoder = load_encoder(config.encoder, attn_implementation="eager")  # attentions needed
    started = time.perf_counter()
    arrays = {role: extract(encoder, splits[role].texts) for role in ("train", "eval")}
    seconds = time.perf_counter() - started
    train_variants, eval_variants = variants(arrays["train"]), variants(arrays["eval"])
    rows = []
    for name, (layers, x_train) in progress_bar(train_variants.items(), desc="variants"):
        result = score(
            x_train, splits["train"].labels, eval_variants[name][1], splits["eval"].labels, config
        )
        rows.append({"variant": name, "layers": layers, "dim": x_train.shape[1], **result})
        log.info("study: %-36s dev accuracy %.4f (C=%g)", name, result["accuracy"], result["C"])
    report = {
        "run": config.run,
        "encoder": config.encoder.name,
        "extraction_s": seconds,
        "n_train": len(splits["train"]),
        "n_eval": len(splits["eval"]),
        "results": rows,
    }
    write_json(out_root / f"{config.run}.json", report)
    per_layer = [
        {
            "pooling": r["variant"].split(",")[0],
            "layer": int(r["layers"]),
            "accuracy": r["accuracy"],
        }
        for r in rows
        if ", layer " in r["variant"]
    ]
    with atomic_path(out_root / f"{config.run}-by-layer.png") as tmp:
        plots.by_layer(per_layer, tmp, config.run)
    write_text(out_root / f"{config.run}.md", markdown(report))
    print(markdown(report))
    return report


def markdown(report: dict[str, Any]) -> str:
    """The study as a table, best dev accuracy first."""
    lines = [
        f"Encoder `{report['encoder']}`; {report['n_train']:,} train / {report['n_eval']:,} eval "
        f"sentences; one extraction pass for every variant: {report['extraction_s']:.0f} s "
        "(eager attention, all hidden states and attentions).",
        "",
        "| variant | layers | dim | dev accuracy | CV accuracy | C |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in sorted(report["results"], key=lambda r: -r["accuracy"]):
        lines.append(
            f"| {r['variant']} | {r['layers']} | {r['dim']} | {r['accuracy']:.4f} "
            f"| {r['cv_accuracy']:.4f} | {r['C']:g} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    """Command line: run the study for a config."""
    study(cli.config_from_args(cli.stage_parser(__doc__).parse_args()))


if __name__ == "__main__":
    cli.run(main)
