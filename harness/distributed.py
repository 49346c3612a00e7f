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


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


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
