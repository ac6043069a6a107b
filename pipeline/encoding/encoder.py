"""The frozen encoder: load it once, then turn sentences into one vector each.

`embed` follows sentence-transformers' `encode()`: tokenize once, sort by token length, batch by a
token budget (packed, so with no padding, where the model allows: `pipeline.fast.packing`),
run under `torch.inference_mode()`, pool, and write each vector back at its input position.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModel, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase
from transformers.utils import logging as transformers_logging

from pipeline import PipelineError
from pipeline.config import EncoderConfig
from pipeline.encoding.batching import pad_ids, token_budget_batches
from pipeline.encoding.device import check_precision, pick_device
from pipeline.hub import encoder_dir
from pipeline.progress import progress_bar

WINDOW = 65_536  # sentences sorted and batched together by `embed`
TOKENIZE_CHUNK = 8192  # texts tokenized in one call (only their ids are kept)


@dataclass
class Encoder:
    """A loaded tokenizer and model in eval mode, with the settings that shape its vectors."""

    tokenizer: PreTrainedTokenizerBase
    model: PreTrainedModel
    config: EncoderConfig
    device: torch.device
    folder: Path

    @property
    def dim(self) -> int:
        """Length of one sentence vector: the hidden size times the number of pooled layers."""
        return self.model.config.hidden_size * len(pooled_layers(self.config))

    @property
    def prepacked(self) -> bool:
        """Whether the linear layers are oneDNN's prepacked ones (`pipeline.fast.prepack`)."""
        from pipeline.fast.prepack import is_prepacked

        return is_prepacked(self.model)

    @property
    def packed(self) -> bool:
        """Whether batches run packed (`pipeline.fast.packing`): no padding, any lengths."""
        from pipeline.fast import runs_packed

        return runs_packed(self.model)

    def count_tokens(self, texts: list[str]) -> np.ndarray:
        """How many tokens the tokenizer finds in each text, special tokens not counted."""
        encoded = self.tokenizer(texts, add_special_tokens=False)["input_ids"]
        return np.fromiter(map(len, encoded), dtype=np.int64, count=len(texts))

    def encode(self, texts: list[str], progress: bool = False) -> np.ndarray:
        """One float32 vector per text, in input order (`embed` without the truncation count)."""
        return embed(self, texts, progress=progress)[0]


# runs a window's batches from a given one on: yields (batches done, positions, vectors) in order
WindowRunner = Callable[
    [Encoder, list[np.ndarray], list[np.ndarray], int], Iterator[tuple[int, np.ndarray, np.ndarray]]
]


def load_encoder(
    config: EncoderConfig,
    folder: Path | None = None,
    attn_implementation: str | None = None,
    prepack: bool = True,
    packing: bool = True,
    int8_reduce_range: bool | None = None,
) -> Encoder:
    """Load tokenizer and model (safetensors only, no remote code) and check the pooling fits.

    `packing` runs packed batches where the model supports them (and the precision and pooling
    allow them); the others, or all with `packing=False` or an `attn_implementation`, run padded
    batches with transformers' attention ("eager" can return attentions). `prepack` swaps the
    linear layers for oneDNN's prepacked ones where that applies (packed batches on the CPU).
    Both are `pipeline.fast` paths. `int8_reduce_range` quantizes int8 to 7 bits (True) or 8
    (False); None: what this CPU needs (7 without VNNI).
    """
    folder = folder or encoder_dir(config.name, config.revision)
    device = pick_device(config.device)
    check_precision(config.precision, device)
    transformers_logging.disable_progress_bar()  # a bar per weight file is noise here
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder)
        model = AutoModel.from_pretrained(
            folder,
            use_safetensors=True,
            dtype=torch.float32,
            attn_implementation=attn_implementation,
        )
    except (OSError, ValueError) as err:
        raise PipelineError(f"cannot load encoder from {folder}: {err}") from None
    model.eval().to(device)
    # int8 runs compiled on padded batches; the pooler reads token 0 of each padded row
    packable = config.precision != "int8" and config.pooling != "pooler"
    if packing and attn_implementation is None and packable:
        from pipeline.fast import pack_where_possible

        pack_where_possible(model)
    layers = model.config.num_hidden_layers
    if not all(-(layers + 1) <= layer <= layers for layer in pooled_layers(config)):
        raise PipelineError(
            f"encoder.layer={config.layer} is out of range for {config.name} "
            f"({layers} layers: use 0..{layers} or -1..-{layers + 1}; 0 is the embeddings)"
        )
    if config.pooling == "pooler":
        if getattr(model, "pooler", None) is None:
            raise PipelineError(
                f"encoder.pooling=pooler: {type(model).__name__} ({config.name}) has no pooler "
                "output; use cls or mean"
            )
        if pooled_layers(config) != [-1]:
            raise PipelineError("encoder.pooling=pooler always uses the last layer; set layer=-1")
    encoder = Encoder(tokenizer, model, config, device, folder)
    if config.precision == "int8":  # torchao's int8 layers are only fast compiled
        from pipeline.fast import int8

        calibrate = functools.partial(embed, encoder, progress=False)
        int8.quantize_int8(model, calibrate, reduce_range=int8_reduce_range)
        int8.compile_model(model)
    elif prepack and encoder.packed:  # rounded row counts keep oneDNN's kernels few
        from pipeline.fast.prepack import prepack_linears

        prepack_linears(model, config.precision, device)
    return encoder


def embed(
    encoder: Encoder,
    texts: list[str],
    out: np.ndarray | None = None,
    progress: bool = True,
    skip_batches: int = 0,
    on_batch: Callable[[int, int], None] | None = None,
    run_window: WindowRunner | None = None,
) -> tuple[np.ndarray, int]:
    """Vectors for `texts` in input order (into `out` if given) and the number truncated.

    The texts are taken a window of WINDOW sentences at a time: tokenized, sorted by length and
    cut into batches within the window, so memory does not grow with the number of texts. The
    batches are a fixed function of the texts, tokenizer and token budget, so a caller can resume:
    `skip_batches` leaves the first batches (already in `out`) alone, and `on_batch(done,
    planned)` is called after each batch with the number of batches cut so far (done == planned
    at the end of each window, and after the last batch). `run_window` runs a window's batches
    (default: `run_batches`, in this process; `pipeline.scale.ray_engine` passes a Ray one).
    """
    run_window = run_window or run_batches
    if out is None:
        out = np.empty((len(texts), encoder.dim), dtype=np.float32)
    truncated = planned = 0
    with progress_bar(total=len(texts), unit="sent", disable=not progress, desc="encoding") as bar:
        for start, ids, batches, cut in windows(encoder, texts):
            truncated += cut
            skip = min(len(batches), max(0, skip_batches - planned))
            bar.update(sum(map(len, batches[:skip])))
            if skip < len(batches):
                for done, positions, vectors in run_window(encoder, ids, batches, skip):
                    out[start + positions] = vectors
                    bar.update(len(positions))
                    if on_batch:
                        on_batch(planned + done, planned + len(batches))
            planned += len(batches)
    return out, truncated


def run_batches(
    encoder: Encoder, ids: list[np.ndarray], batches: list[np.ndarray], skip: int
) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """Run a window's batches from `skip` on, here; yield (batches done, positions, vectors)."""
    config = encoder.config
    with torch.inference_mode(), _autocast(config.precision, encoder.device):
        for done, batch in enumerate(batches[skip:], start=skip + 1):
            input_ids, mask = pad([ids[i] for i in batch], encoder.tokenizer.pad_token_id)
            vectors = _forward(encoder, input_ids.to(encoder.device), mask.to(encoder.device))
            yield done, batch, vectors.float().cpu().numpy()


def windows(
    encoder: Encoder, texts: list[str]
) -> Iterator[tuple[int, list[np.ndarray], list[np.ndarray], int]]:
    """`embed`'s plan, a window of WINDOW texts at a time: its first position, the token ids,
    the batches (positions in the window, longest first) and how many texts were truncated."""
    for start in range(0, len(texts), WINDOW):
        ids, truncated = tokenize(encoder, texts[start : start + WINDOW])
        lengths = np.fromiter(map(len, ids), dtype=np.int64, count=len(ids))
        order = np.argsort(-lengths, kind="stable")
        yield (
            start,
            ids,
            token_budget_batches(order, lengths, encoder.config.batch_tokens, encoder.packed),
            truncated,
        )


def tokenize(encoder: Encoder, texts: list[str]) -> tuple[list[np.ndarray], int]:
    """Token ids per text (int32, truncated to max_length) and how many texts were truncated.

    Tokenizes TOKENIZE_CHUNK texts at a time and keeps only the ids, so memory stays small.
    """
    ids, truncated = [], 0
    for start in range(0, len(texts), TOKENIZE_CHUNK):
        chunk = texts[start : start + TOKENIZE_CHUNK]
        encoded = encoder.tokenizer(chunk, truncation=True, max_length=encoder.config.max_length)
        truncated += sum(bool(e.overflowing) for e in encoded.encodings)
        ids.extend(np.asarray(row, dtype=np.int32) for row in encoded["input_ids"])
    return ids, truncated


def pad(rows: list[np.ndarray], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """`batching.pad_ids` as torch tensors: right-padded token ids and the attention mask."""
    input_ids, mask = pad_ids(rows, pad_id)
    return torch.from_numpy(input_ids), torch.from_numpy(mask)


def pooled_layers(config: EncoderConfig) -> list[int]:
    """`encoder.layer` as a list: one layer, or several whose pooled vectors are concatenated."""
    return config.layer if isinstance(config.layer, list) else [config.layer]


def _forward(encoder: Encoder, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """One pooled vector per row of the batch (several layers' vectors side by side)."""
    config = encoder.config
    layers = pooled_layers(config)
    inputs: dict = {"input_ids": input_ids, "output_hidden_states": layers != [-1]}
    if encoder.packed:
        from pipeline.fast.packing import pack
        from pipeline.fast.prepack import ROUND_ROWS_TO

        round_to = ROUND_ROWS_TO if encoder.prepacked else 1
        packed_ids, positions, runs = pack(input_ids, mask, round_to)
        inputs |= {"input_ids": packed_ids, "position_ids": positions, "packed_runs": runs}
    elif not bool(mask.all()) or _compiled(config):
        inputs["attention_mask"] = mask
    output = encoder.model(**inputs)
    if config.pooling == "pooler":
        return output.pooler_output
    hiddens = (
        [output.last_hidden_state]
        if layers == [-1]
        else [output.hidden_states[layer] for layer in layers]
    )
    if encoder.packed:
        from pipeline.fast.packing import unpack

        hiddens = [unpack(hidden, mask) for hidden in hiddens]
    if config.pooling == "cls":
        return torch.cat([hidden[:, 0] for hidden in hiddens], dim=-1)
    weights = mask.unsqueeze(-1).to(torch.float32)
    return torch.cat(
        [(hidden.float() * weights).sum(dim=1) / weights.sum(dim=1) for hidden in hiddens], dim=-1
    )


def _compiled(config: EncoderConfig) -> bool:
    """Whether the model is compiled: it then always gets a mask, so one graph serves all batches
    (without padding, no mask saves the eager path its mask work)."""
    return config.precision == "int8"


def _autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """Autocast for bf16/fp16; plain float32 otherwise (int8's layers quantize themselves)."""
    if precision in ("fp32", "int8"):
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)
