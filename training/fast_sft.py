"""A drop-in SFTTrainer whose step costs less on a CPU and computes the same loss.

TRL's step, on a CPU, spends its time in places this trainer avoids:
- padding: a batch is padded to its longest row, and every pad token goes through the model;
- the LM head on every position: off Triton devices TRL's fused head scores every position of the
  padded batch (prompt and padding included) and its entropy, over the full 49k vocabulary.

Here the micro-batch's rows run without their padding, packed end to end into one sequence of at
most `pack_tokens` tokens: the linear layers see every packed token at once, as in TRL's padded
batch but without the pad tokens, while attention runs row by row through a registered attention
function, causal within each row (positions restart at 0 for each row, as they would alone). Only
the positions with a label go through the LM head, and each pack's backward runs before the next
pack's forward. On fp32 CPU Llama models the loss with its logged entropy and accuracy and the per-row
attention run as fused kernels
(training/fused.py); freed memory stays in the process for the next pack, and AdamW's moments are
allocated before the first forward. Gradients accumulate exactly as across a padded batch: the
summed token loss is divided by the same `num_items_in_batch`. The batches, the order, the optimizer
and the schedule are TRL's own; perf/train_step.py measures the speed and prints both loss curves side
by side.

With activation checkpointing on (TRL's default; cgd/train.py turns it off, since the models
trained here fit without it) the step keeps one row per forward and torch's own ops; under bf16
mixed precision it keeps the packing and torch's autocast ops (the fused kernels are fp32 ones).
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from transformers import AttentionInterface, PreTrainedModel
from trl import SFTTrainer

import cpu_engine
from training import fused


class FastSFTTrainer(SFTTrainer):
    """SFTTrainer with an unpadded, packed, completion-only-head training step (same loss)."""

    # Tokens per packed forward. A pack's activations stay alive until its backward, and on 64 `cgd`
    # rows (about 700 tokens each, batch 8, SmolLM2-135M) 4,096 trained no faster than 2,048 with a
    # 9.4 GB peak against 6.8 GB (docs/performance.md).
    pack_tokens = 2048

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.accelerator.device.type == "cpu":
            cpu_engine.retain_freed_memory(any_size=True)  # each pack's buffers are reused by the next

    def create_optimizer(self, *args, **kwargs):
        optimizer = super().create_optimizer(*args, **kwargs)
        if self.accelerator.device.type == "cpu":
            _allocate_adamw_state(optimizer)
        return optimizer

    def training_step(self, model, inputs, num_items_in_batch=None):
        if not self._plain_token_loss(inputs):
            return super().training_step(model, inputs, num_items_in_batch)
        model.train()
        if hasattr(self.optimizer, "train") and callable(self.optimizer.train):
            self.optimizer.train()
        inputs = self._prepare_inputs(inputs)
        labels = inputs["labels"]
        mask = inputs.get("attention_mask")
        if mask is None:
            mask = torch.ones_like(inputs["input_ids"])
        global_count = num_items_in_batch is not None
        if num_items_in_batch is None:
            num_items_in_batch = (labels[:, 1:] != -100).sum()
        divisor = self._accumulation_divisor(num_items_in_batch)
        denominator = torch.as_tensor(num_items_in_batch).clamp(min=1) * divisor
        if global_count and self.args.average_tokens_across_devices and self.accelerator.num_processes > 1:
            # num_items_in_batch counts the tokens of every process while DDP averages the gradients
            # over them: Trainer.compute_loss multiplies the loss back by the process count, so do we.
            denominator = denominator / (self.accelerator.num_processes // self.get_tp_size())
        total = torch.zeros((), device=labels.device)
        stats = torch.zeros(3, device=labels.device)  # entropy sum, top-1 hits, scored tokens
        rows = [
            (inputs["input_ids"][r][mask[r].bool()], labels[r][mask[r].bool()]) for r in range(labels.size(0))
        ]
        modules = list(model.modules())  # one walk over the modules per step
        # Activation checkpointing recomputes forwards after the step has handed the attention and the
        # fused modules back: with it on, a step switches neither (one row per forward, torch's ops).
        checkpointed = any(getattr(m, "is_gradient_checkpointing", False) for m in modules)
        configs = [] if checkpointed else _switchable_configs(modules)
        # The fused kernels are fp32 ones; under bf16 autocast torch's ops run, as on a GPU.
        plain_fp32 = self.accelerator.mixed_precision == "no"
        kernels = fused.fusable(modules) if plain_fp32 and not checkpointed else []
        packs = _packs(rows, self.pack_tokens if configs else 1)
        with self.maybe_activation_offload_context:
            for i, pack in enumerate(packs):
                last = i == len(packs) - 1
                # DDP: synchronise gradients once, on the micro-batch's last backward.
                sync = contextlib.nullcontext() if last else self.accelerator.no_sync(model)
                with sync, self.compute_loss_context_manager():
                    loss = self._pack_loss(model, pack, stats, configs, kernels) / denominator
                self.accelerator.backward(loss)
                total += loss.detach()
        self._log_step_metrics(mask, stats)
        return total

    def _plain_token_loss(self, inputs) -> bool:
        """Whether the step is TRL's plain token NLL on padded rows, the case this trainer computes.

        Packed or padding-free rows, DFT, label smoothing, a custom loss and MoE aux losses keep
        TRL's own step, and so do FSDP and DeepSpeed: their sharded parameters are gathered by the
        wrapped model's forward, which the per-row step bypasses, and DeepSpeed's engine counts
        every backward as a micro-batch.
        """
        return (
            "position_ids" not in inputs
            and not self.is_fsdp_enabled
            and not self.is_deepspeed_enabled
            and getattr(self.args, "loss_type", "nll") == "nll"
            and self.label_smoother is None
            and self.compute_loss_func is None
            and not self.aux_loss_enabled
        )

    def _pack_loss(
        self,
        model,
        pack: list[tuple[torch.Tensor, torch.Tensor]],
        stats: torch.Tensor,
        configs: list,
        kernels: list,
    ) -> torch.Tensor:
        """Summed token loss of the rows in `pack` (each row: unpadded ids and labels), in one forward.

        Through the (DDP / PEFT) wrapper's own forward: DDP reduces gradients only for a backward
        that its forward prepared. `logits_to_keep` takes position indices, so the LM head still
        projects the scored positions alone.
        """
        scored, wanted, offset = [], [], 0
        for ids, labels in pack:  # a row's targets are its own next tokens, never the next row's first
            target = labels[1:]
            keep = (target != -100).nonzero().squeeze(-1)
            scored.append(keep + offset)
            wanted.append(target[keep])
            offset += ids.numel()
        scored, wanted = torch.cat(scored), torch.cat(wanted)
        ids = torch.cat([row for row, _ in pack])[None]
        extra = {}
        if configs:  # a pack of one row too: the per-row attention has the fused kernel
            lengths = [row.numel() for row, _ in pack]
            extra = {
                "position_ids": torch.cat([torch.arange(n, device=ids.device) for n in lengths])[None],
                ROW_LENGTHS: lengths,
            }
        with _row_attention(configs), fused.fused(kernels):
            if scored.numel() == 0:
                logits = model(input_ids=ids, use_cache=False, logits_to_keep=1, **extra).logits
                return logits.sum() * 0.0  # keeps every pack's backward (and DDP's hooks) on the graph
            logits = model(input_ids=ids, use_cache=False, logits_to_keep=scored, **extra).logits
            # squeeze, not [0]: select's backward would zero-fill and copy a logits-sized gradient
            logits = logits.squeeze(0).float()
        loss, entropy, hits = fused.token_loss(logits, wanted)
        stats += torch.stack([entropy, hits.float(), torch.tensor(float(wanted.numel()))])
        return loss

    def _accumulation_divisor(self, num_items_in_batch) -> int:
        """Trainer.training_step's rule: divide by the accumulation steps unless the loss is token-normalised."""
        scaled = self.loss_is_scaled_for_ga
        if scaled is None:
            scaled = (
                self.model_accepts_loss_kwargs and num_items_in_batch is not None
            ) or self.compute_loss_func is not None
        return 1 if scaled else self.current_gradient_accumulation_steps

    def _log_step_metrics(self, mask: torch.Tensor, stats: torch.Tensor) -> None:
        """The metrics TRL logs per step, computed on the scored positions only."""
        entropy, hits, scored = self.accelerator.gather_for_metrics(stats[None]).sum(0).tolist()
        metrics = self._metrics["train"]
        metrics["entropy"].append(entropy / scored if scored else 0.0)
        metrics["mean_token_accuracy"].append(hits / scored if scored else 0.0)
        self._total_train_tokens += (
            int(self.accelerator.gather_for_metrics(mask.sum()).sum()) // self._tp_size
        )
        metrics["num_tokens"] = [self._total_train_tokens]


def _allocate_adamw_state(optimizer) -> None:
    """torch AdamW's moments, allocated before the first forward instead of in the first step, and the
    same: zero moments, step 0 (a step at learning rate and weight decay 0 on zero gradients creates
    them and changes nothing else).

    Why: allocated after the first backward, the moments (twice the weights) take the heap space that
    the first step's activations freed, and the second step's activations come back as fresh pages
    that the kernel must fault in (docs/performance.md, "Design figures": a third fewer seconds on
    that step and a smaller peak with the moments allocated first).
    """
    if type(optimizer) is not torch.optim.AdamW or optimizer.state:
        return
    params = [p for group in optimizer.param_groups for p in group["params"] if p.requires_grad]
    settings = [(group["lr"], group["weight_decay"]) for group in optimizer.param_groups]
    grads = [p.grad for p in params]
    try:
        for group in optimizer.param_groups:
            group["lr"], group["weight_decay"] = 0.0, 0.0
        for p in params:
            p.grad = torch.zeros_like(p)
        optimizer.step()
    finally:
        for group, (lr, decay) in zip(optimizer.param_groups, settings):
            group["lr"], group["weight_decay"] = lr, decay
        for p, grad in zip(params, grads):
            p.grad = grad
    for state in optimizer.state.values():
        state["step"] = torch.zeros_like(state["step"]) if torch.is_tensor(state["step"]) else 0


# The keyword that carries a pack's row lengths from the model's forward to the attention function
# (transformers passes unknown forward kwargs through to every attention call).
ROW_LENGTHS = "cgd_row_lengths"
ROW_ATTENTION = "cgd_rows"


def _packs(rows: list, budget: int) -> list[list]:
    """Consecutive rows grouped into packs of at most `budget` tokens (a longer row is a pack alone)."""
    packs: list[list] = []
    size = 0
    for row in rows:
        n = row[0].numel()
        if not packs or size + n > budget:
            packs.append([])
            size = 0
        packs[-1].append(row)
        size += n
    return packs


def _row_attention_forward(module, query, key, value, attention_mask, dropout=0.0, scaling=None, **kwargs):
    """Causal attention within each packed row: the fused kernel where it applies, else SDPA over each
    row's slice of the pack.

    Written by hand because transformers' packed-sequence support either needs flash-attention's
    varlen kernels (CUDA only) or builds a block-diagonal mask over the whole pack for SDPA, which
    does the attention work of every row against every other row and then masks it away.
    """
    lengths = kwargs[ROW_LENGTHS]
    if scaling is None:
        scaling = query.shape[-1] ** -0.5
    if dropout == 0.0 and (out := fused.row_attention(query, key, value, lengths, scaling)) is not None:
        return out, None
    gqa = getattr(module, "num_key_value_groups", 1) > 1
    # split, not one slice per row: a slice's backward zero-fills a pack-sized gradient for every row
    out = [
        F.scaled_dot_product_attention(
            q, k, v, dropout_p=dropout, scale=scaling, is_causal=True, enable_gqa=gqa
        )
        for q, k, v in zip(*(t.split(lengths, dim=2) for t in (query, key, value)))
    ]
    return torch.cat(out, dim=2).transpose(1, 2).contiguous(), None


AttentionInterface.register(ROW_ATTENTION, _row_attention_forward)


def _switchable_configs(modules: list) -> list:
    """The configs whose attention a pack switches to per-row attention; [] where packing cannot apply.

    Packing needs every model to dispatch attention through transformers' AttentionInterface with
    SDPA or eager. Models with their own attention code, flash/flex kernels or a paged cache keep one
    row per forward.
    """
    models = [m for m in modules if isinstance(m, PreTrainedModel)]
    configs = list({id(m.config): m.config for m in models}.values())
    packable = all(getattr(m, "_supports_attention_backend", False) for m in models) and all(
        getattr(c, "_attn_implementation", None) in ("sdpa", "eager") for c in configs
    )
    return configs if packable else []


@contextlib.contextmanager
def _row_attention(configs: list):
    """Per-row attention on these configs for the duration of one forward; their own afterwards."""
    saved = [c._attn_implementation for c in configs]
    for c in configs:
        c._attn_implementation = ROW_ATTENTION
    try:
        yield
    finally:
        for c, name in zip(configs, saved):
            c._attn_implementation = name
