"""A tiny randomly initialised llama with SmolLM2's tokenizer, for fast end-to-end tests and CI gates.

Built from a config (2 layers, 64 hidden) in seconds; its outputs are nonsense but deterministic,
which is exactly what tests of plumbing, caching, resume and gates need.
"""

from __future__ import annotations

from pathlib import Path


def build_tiny_model(target: Path, tokenizer, seed: int = 0, layers: int = 2, hidden: int = 64) -> Path:
    """`tokenizer`: SmolLM2's (harness.models.embedded_tokenizer), so prompts tokenize as the real model's."""
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config).to(torch.float32)
    model.generation_config = GenerationConfig(
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id
    )
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)
    return target
