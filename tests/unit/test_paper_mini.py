"""The paper-mini profile is the paper profile's code path with the counts scaled down, nothing else."""

from __future__ import annotations

from harness_app.run_config import resolve


def test_paper_mini_keeps_the_paper_profiles_path_and_lengths():
    paper, mini = resolve("paper"), resolve("paper-mini")
    assert mini.model == "smollm2-135m" and mini.backend == paper.backend == "vllm"
    assert mini.teacher.model.startswith("openai:http://127.0.0.1:") and paper.teacher.model.startswith(
        "openai:"
    )
    assert mini.train.precision == paper.train.precision == "bf16"
    same = ("max_length", "lr_scheduler", "grad_accum")
    assert [getattr(mini.train, k) for k in same] == [getattr(paper.train, k) for k in same]
    assert mini.data.probe_max_new_tokens == paper.data.probe_max_new_tokens == 2048
    assert mini.data.columns == paper.data.columns
    assert mini.eval.max_new_tokens == paper.eval.max_new_tokens == 4096
    assert mini.eval.vllm.max_model_len == paper.eval.vllm.max_model_len == 8192
    assert mini.eval.benchmarks == paper.eval.benchmarks
    # Only the counts shrink.
    assert (mini.data.n_problems, mini.train.max_steps, mini.eval.limit) == (4, 2, 1)
