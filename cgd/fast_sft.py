"""A drop-in SFTTrainer whose step costs less on a CPU and computes the same loss.

TRL's step, on a CPU, spends its time and memory in three places this trainer avoids:
- padding: a batch is padded to its longest row, and every pad token goes through the model;
- the LM head on every position: off Triton devices TRL's fused head scores every position of the
  padded batch (prompt and padding included) and its entropy, over the full 49k vocabulary;
- one graph for the whole micro-batch: activations of every row are alive at the backward.

Here each row of the micro-batch runs alone without its padding (causal attention needs no mask,
so the fused SDPA kernel applies), only the positions with a label go through the LM head, and the
row's backward runs before the next row's forward. Gradients accumulate across rows exactly as
across a padded batch: each row's summed token loss is divided by the same `num_items_in_batch`.
The batches, the order, the optimizer and the schedule are TRL's own; perf/training.py
measures the speed and prints both loss curves side by side.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from trl import SFTTrainer


class FastSFTTrainer(SFTTrainer):
    """SFTTrainer with an unpadded, per-row, completion-only-head training step (same loss)."""

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
        rows = labels.size(0)
        stats = torch.zeros(3, device=labels.device)  # entropy sum, top-1 hits, scored tokens
        with self.maybe_activation_offload_context:
            for row in range(rows):
                keep = mask[row].bool()
                last = row == rows - 1
                # DDP: synchronise gradients once, on the micro-batch's last backward.
                sync = contextlib.nullcontext() if last else self.accelerator.no_sync(model)
                with sync, self.compute_loss_context_manager():
                    loss = (
                        self._row_loss(model, inputs["input_ids"][row][keep], labels[row][keep], stats)
                        / denominator
                    )
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

    def _row_loss(self, model, ids: torch.Tensor, labels: torch.Tensor, stats: torch.Tensor) -> torch.Tensor:
        # Through the (DDP / PEFT) wrapper's own forward: DDP reduces gradients only for a backward
        # that its forward prepared. `logits_to_keep` takes position indices, so the LM head still
        # projects the scored positions alone.
        target = labels[1:]
        scored = (target != -100).nonzero().squeeze(-1)
        if scored.numel() == 0:
            logits = model(input_ids=ids[None], use_cache=False, logits_to_keep=1).logits
            return logits.sum() * 0.0  # keeps every row's backward (and DDP's hooks) on the graph
        logits = model(input_ids=ids[None], use_cache=False, logits_to_keep=scored).logits[0].float()
        wanted = target[scored]
        with torch.no_grad():
            logp = logits.log_softmax(-1)
            stats += torch.stack(
                [
                    -(logp.exp() * logp).sum(),
                    (logits.argmax(-1) == wanted).sum().float(),
                    torch.tensor(float(wanted.numel())),
                ]
            )
        return F.cross_entropy(logits, wanted, reduction="sum")

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
