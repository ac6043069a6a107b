"""The frozen encoder: load it once, then turn sentences into one vector each.

The torch engine of the one encode path (`pipeline.encoding.batching.embed`): it supplies
`tokenize` (the model's own fast tokenizer, cut at max_length) and `run` (one batch under
`torch.inference_mode()`, packed with no padding where the model allows: `pipeline.fast.packing`,
then pooled by `pool`).
"""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import AutoModel, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase
from transformers.utils import logging as transformers_logging

from pipeline import PipelineError
from pipeline.config import EncoderConfig
from pipeline.encoding.batching import Tokens, cut_at, embed, pad_ids, tokenize
from pipeline.encoding.device import check_precision, pick_device
from pipeline.hub import encoder_dir


@dataclass
class Encoder:
    """A loaded tokenizer and model in eval mode, with the settings that shape its vectors."""

    tokenizer: PreTrainedTokenizerBase
    model: PreTrainedModel
    config: EncoderConfig
    device: torch.device
    folder: Path
    cutter: Any = None  # the tokenizer's `tokenizers.Tokenizer`, cutting into windows (`cut_at`)

    def __post_init__(self) -> None:
        if self.cutter is None:
            self.cutter = cutting_tokenizer(self.tokenizer, self.config)

    @property
    def dim(self) -> int:
        """Length of one sentence vector: the hidden size times the number of pooled layers."""
        return self.model.config.hidden_size * len(pooled_layers(self.config))

    @property
    def batch_tokens(self) -> int:
        return self.config.batch_tokens

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

    def tokenize(self, texts: list[str], offsets: bool = False) -> Tokens:
        """Ids, real-token counts (and character offsets) from one tokenizer call."""
        return tokenize(self.cutter, texts, self.config.long_texts == "chunk", offsets)

    def run(self, rows: list[np.ndarray]) -> np.ndarray:
        """One batch of token ids -> its sentence vectors (float32)."""
        input_ids, mask = pad(rows, self.tokenizer.pad_token_id)
        with torch.inference_mode(), _autocast(self.config.precision, self.device):
            vectors = _forward(self, input_ids.to(self.device), mask.to(self.device))
        return vectors.float().cpu().numpy()

    def encode(self, texts: list[str] | Tokens, progress: bool = False) -> np.ndarray:
        """One float32 vector per text, in input order (`embed` without the truncation count)."""
        return embed(self, texts, progress=progress)[0]


def cutting_tokenizer(tokenizer: PreTrainedTokenizerBase, config: EncoderConfig) -> Any:
    """A copy of `tokenizer`'s fast `tokenizers.Tokenizer`, cutting as `config` says (`cut_at`):
    the one tokenizer both engines run (`make export` saves it as tokenizer.json)."""
    from tokenizers import Tokenizer

    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise PipelineError(f"{type(tokenizer).__name__} has no fast tokenizer (tokenizer.json)")
    cut = (config.max_length, config.long_texts, config.stride)
    return cut_at(Tokenizer.from_str(backend.to_str()), *cut)


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
    positions = model.config.max_position_embeddings - (  # MPNet's start after its pad id
        getattr(getattr(model, "embeddings", None), "padding_idx", -1) + 1
    )
    if config.max_length > positions:
        raise PipelineError(
            f"encoder.max_length={config.max_length} is more than {config.name} reads at once "
            f"({positions} tokens); set encoder.max_length to {positions} or less"
        )
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


def pad(rows: list[np.ndarray], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """`batching.pad_ids` as torch tensors: right-padded token ids and the attention mask."""
    input_ids, mask = pad_ids(rows, pad_id)
    return torch.from_numpy(input_ids), torch.from_numpy(mask)


def pooled_layers(config: EncoderConfig) -> list[int]:
    """`encoder.layer` as a list: one layer, or several whose pooled vectors are concatenated."""
    return config.layer if isinstance(config.layer, list) else [config.layer]


def pool(
    output: Any, mask: torch.Tensor, config: EncoderConfig, unpack: Any = None
) -> torch.Tensor:
    """The run's sentence vectors from a model output: the pooler output, or the [CLS] or masked
    mean of each pooled layer, side by side. `unpack` turns packed hidden states into padded ones.
    The one pooling of the torch engine, the export (`pipeline.export`) and the study."""
    if config.pooling == "pooler":
        return output.pooler_output
    layers = pooled_layers(config)
    hiddens = (
        [output.last_hidden_state]
        if layers == [-1]
        else [output.hidden_states[layer] for layer in layers]
    )
    if unpack is not None:
        hiddens = [unpack(hidden, mask) for hidden in hiddens]
    return torch.cat([pool_tokens(hidden, mask, config.pooling) for hidden in hiddens], dim=-1)


def pool_tokens(hidden: torch.Tensor, mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """[CLS] (token 0) or the masked mean over tokens of `hidden` (batch, [layers,] tokens, dim)."""
    if pooling == "cls":
        return hidden[..., 0, :]
    shape = (mask.shape[0],) + (1,) * (hidden.dim() - 3) + (mask.shape[1], 1)
    weights = mask.reshape(shape).to(torch.float32)
    return (hidden.float() * weights).sum(dim=-2) / weights.sum(dim=-2)


def _forward(encoder: Encoder, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """One pooled vector per row of the batch (several layers' vectors side by side)."""
    config = encoder.config
    inputs: dict = {"input_ids": input_ids, "output_hidden_states": pooled_layers(config) != [-1]}
    unpack = None
    if encoder.packed:
        from pipeline.fast.packing import pack, unpack
        from pipeline.fast.prepack import ROUND_ROWS_TO

        round_to = ROUND_ROWS_TO if encoder.prepacked else 1
        packed_ids, positions, runs = pack(input_ids, mask, round_to)
        inputs |= {"input_ids": packed_ids, "position_ids": positions, "packed_runs": runs}
    elif not bool(mask.all()) or config.precision == "int8":
        # int8 runs compiled: a mask every time keeps it one graph (else no mask saves its work)
        inputs["attention_mask"] = mask
    return pool(encoder.model(**inputs), mask, config, unpack)


def _autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """Autocast for bf16/fp16; plain float32 otherwise (int8's layers quantize themselves)."""
    if precision in ("fp32", "int8"):
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)
