"""The reserved model `vft-tiny`: a random-weight model and tokenizer built offline.

The CPU smoke recipe names `model.name = "vft-tiny"`; no hub is reachable there, so the
trainer builds it here, deterministically (fixed seed, fixed vocabulary), into the run
folder. Two builds are bit-identical, which is how tests prove that training moved the
weights: they compare a checkpoint with a fresh build.

The tokenizer has one token per character: every printable ASCII character (letters of
both cases, digits, punctuation, space, tab, newline, carriage return), no normalization,
plus six specials (`<pad>`, `<|end|>` = eos, the three chat roles, `<unk>`). A character
outside that set becomes `<unk>`. Text round-trips exactly through encode/decode, so a
reward that looks at case or at digits (the `vft_smoke` environment) sees what the model
wrote.
"""

from __future__ import annotations

import json
import string
from pathlib import Path
from typing import Any

TINY_MODEL = "vft-tiny"
SEED = 1234
SPECIALS = ["<pad>", "<|end|>", "<|system|>", "<|user|>", "<|assistant|>", "<unk>"]
# printable ASCII without vertical tab and form feed; a fixed order, so fixed token ids
CHARS = [c for c in string.printable if c not in "\x0b\x0c"]
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
SHAPE = {"hidden_size": 128, "intermediate_size": 256, "num_hidden_layers": 2, "heads": 4}


def is_tiny(name: str) -> bool:
    return name == TINY_MODEL


def build_tokenizer() -> Any:
    """A character-level tokenizer (one token per character) with a minimal chat template.

    `padding_side` and `clean_up_tokenization_spaces` go to the constructor: they are
    saved with the tokenizer and survive `save_pretrained` / `from_pretrained`.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {tok: i for i, tok in enumerate(SPECIALS + CHARS)}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    # every character its own piece, newlines included (`.` would skip them)
    core.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    core.decoder = decoders.Fuse()
    tok = PreTrainedTokenizerFast(
        tokenizer_object=core,
        pad_token="<pad>",
        eos_token="<|end|>",
        unk_token="<unk>",
        additional_special_tokens=SPECIALS[2:5],
        clean_up_tokenization_spaces=False,
        padding_side="left",
    )
    tok.chat_template = CHAT_TEMPLATE
    return tok


def build_model(vocab_size: int) -> Any:
    """A 2-layer Llama-architecture model with weights drawn from a fixed seed."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=SHAPE["hidden_size"],
        intermediate_size=SHAPE["intermediate_size"],
        num_hidden_layers=SHAPE["num_hidden_layers"],
        num_attention_heads=SHAPE["heads"],
        num_key_value_heads=SHAPE["heads"] // 2,
        max_position_embeddings=1024,
        tie_word_embeddings=True,
        pad_token_id=0,
        eos_token_id=1,
        bos_token_id=None,
        head_dim=SHAPE["hidden_size"] // SHAPE["heads"],
    )
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(SEED)
    try:
        model = LlamaForCausalLM(config)
    finally:
        torch.random.set_rng_state(generator_state)
    model.generation_config.pad_token_id = 0
    model.generation_config.eos_token_id = 1
    return model


def main(argv: list[str] | None = None) -> int:
    """`python -m vft.train.tiny DEST`: build the model there (a plan's setup step)."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m vft.train.tiny DEST", file=sys.stderr)
        return 2
    print(f"vft-tiny: {build(args[0])}", flush=True)
    return 0


def build(dest: str | Path) -> Path:
    """Write the tiny model and tokenizer to `dest` (idempotent) and return it."""
    dest = Path(dest)
    marker = dest / "vft-tiny.json"
    if marker.is_file():
        return dest
    tok = build_tokenizer()
    model = build_model(len(tok))
    dest.mkdir(parents=True, exist_ok=True)
    tok.save_pretrained(dest)
    model.save_pretrained(dest)
    marker.write_text(json.dumps({"name": TINY_MODEL, "seed": SEED, **SHAPE}) + "\n")
    return dest


if __name__ == "__main__":
    raise SystemExit(main())
