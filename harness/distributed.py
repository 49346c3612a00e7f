"""Which process of a launch this is, for commands run under `accelerate launch` or `torchrun`.

Both launchers describe the process through WORLD_SIZE / RANK / LOCAL_RANK; a plain `harness ...`
has none of them and is the whole world (size 1, rank 0). Every process of a launch runs the same
command: all of them train, only rank 0 writes the run directory, and the others wait for it at a
barrier where they need what it wrote.
"""

from __future__ import annotations

import os
from datetime import timedelta

# Rank 0 may build the data (a teacher over thousands of problems) or evaluate while the others
# wait at a barrier; torch's default (30 min on gloo, 10 on NCCL) would kill such a launch.
BARRIER_TIMEOUT = timedelta(hours=48)


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def is_main() -> bool:
    return rank() == 0


def barrier() -> None:
    """Wait until every process of the launch gets here; nothing to wait for in a single process."""
    if world_size() == 1:
        return
    import torch
    from accelerate import PartialState

    # The first PartialState creates the process group (gloo on CPU, NCCL on GPUs) with our timeout;
    # the Trainer later reuses that group.
    PartialState(cpu=not torch.cuda.is_available(), timeout=BARRIER_TIMEOUT).wait_for_everyone()


def release() -> None:
    """After a launch's last collective: drop the process group and the GPU memory training cached, so
    an engine started next in this process (vLLM) finds a plain process with free memory."""
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    if world_size() > 1 and torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def requested_engine() -> str | None:
    """The sharding engine the launch config asked for ("fsdp", "deepspeed"), None for DDP or no launch.
    `accelerate launch` passes a config's distributed_type to its processes as these variables."""
    if os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true":
        return "fsdp"
    if os.environ.get("ACCELERATE_USE_DEEPSPEED", "false").lower() == "true":
        return "deepspeed"
    return None


def check_engine() -> None:
    """Before any stage runs: a launch config whose engine cannot shard on this hardware stops here, in
    one line, instead of after the data stages (or, as accelerate would, as plain DDP)."""
    import torch

    from harness.errors import HarnessError

    engine = requested_engine()
    if engine is None or torch.cuda.is_available():
        return
    if engine == "deepspeed":
        raise HarnessError(
            "DeepSpeed ZeRO-3 (configs/accelerate/zero3.yaml) needs CUDA GPUs and cannot shard on CPU "
            "processes; on CPU launch with configs/accelerate/fsdp.yaml (FSDP2 over gloo) or ddp.yaml"
        )
    if os.environ.get("FSDP_VERSION", "1") != "2":
        raise HarnessError(
            "FSDP on CPU processes needs fsdp_version: 2 (FSDP2, fully_shard) in the launch config; "
            "configs/accelerate/fsdp.yaml has it"
        )


def engage_sharding(accelerator) -> None:
    """Make the engine the launch config names the one that trains, or stop with one line.

    accelerate 1.15 turns a launch config's FSDP or DeepSpeed into a plugin only on GPU-like devices:
    on CPU processes (gloo) it leaves the plugin out and prepares the model as plain DDP, without a
    word. FSDP2 (`fully_shard`) itself runs on CPU over gloo, so here the plugin the launch described
    is installed into accelerate's state, and accelerate's own FSDP2 preparation, save and gather run
    as they would on GPUs. DeepSpeed has no such path on CPU (docs/scale-out.md) and is refused.
    """
    from accelerate import PartialState
    from accelerate.utils import DistributedType, FullyShardedDataParallelPlugin

    from harness.errors import HarnessError

    state = accelerator.state
    done = (DistributedType.FSDP, DistributedType.DEEPSPEED, DistributedType.NO)  # NO: one process
    if requested_engine() is None or state.distributed_type in done:
        return
    if state.distributed_type != DistributedType.MULTI_CPU:
        raise HarnessError(
            f"the launch config asks for {requested_engine()}, but accelerate set up "
            f"{state.distributed_type.value}; launch with configs/accelerate/ddp.yaml, or where the config's devices are"
        )
    check_engine()
    state.fsdp_plugin = FullyShardedDataParallelPlugin()  # from the FSDP_* variables the launch set
    if state.mixed_precision != "no":
        state.fsdp_plugin.set_mixed_precision(state.mixed_precision)
    # Where accelerate itself picks FSDP it records the type in both states: every later
    # AcceleratorState() copies PartialState's over its own.
    state.distributed_type = PartialState._shared_state["distributed_type"] = DistributedType.FSDP


def parameter_shards(model, accelerator) -> dict:
    """How the trained parameters lie across the processes: the engine, the model's parameter count
    and each rank's local part of it (the whole model on every rank under DDP, about 1/N under FSDP)."""
    import torch
    from torch.distributed.tensor import DTensor

    params = list(model.parameters())  # a tied weight once
    local = sum(p.to_local().numel() if isinstance(p, DTensor) else p.numel() for p in params)
    total = sum(p.numel() for p in params)
    per_rank = accelerator.gather(torch.tensor([local], device=accelerator.device)).tolist()
    sharded = any(isinstance(p, DTensor) for p in params)
    engine = "fsdp2" if sharded else "ddp" if accelerator.num_processes > 1 else "single"
    return {"engine": engine, "parameters": total, "local_parameters": per_rank}
