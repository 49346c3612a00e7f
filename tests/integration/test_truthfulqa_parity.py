"""TruthfulQA MC1/MC2 against lm-eval's own task definitions (lm_eval/tasks/truthfulqa), fed the
same offline rows: every request and every score, then a run on the tiny model."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from harness import data, registry
from harness.paths import tasks_dir

TASKS = ("truthfulqa_mc1", "truthfulqa_mc2")


@pytest.fixture(scope="module")
def definitions(data_dir):
    import lm_eval.tasks
    from lm_eval.api.task import ConfigurableTask
    from lm_eval.tasks import TaskManager, get_task_dict
    from lm_eval.tasks._yaml_loader import load_yaml

    rows = registry.get("truthfulqa_mc1").load_rows(truthfulqa_version="2021")
    reference = {}
    for name in TASKS:
        config = load_yaml(Path(lm_eval.tasks.__file__).parent / "truthfulqa" / f"{name}.yaml")
        config.pop("tag", None)
        # lm-eval reads the Hub's truthful_qa validation split; the same 817 rows, offline.
        config.update(
            dataset_path=None,
            dataset_name=None,
            validation_split=None,
            test_split="test",
            custom_dataset=lambda **_: data.as_dataset_dict(rows),
        )
        reference[name] = ConfigurableTask(config=config)
    ours = get_task_dict(list(TASKS), TaskManager(include_path=str(tasks_dir()), include_defaults=False))
    return reference, ours


@pytest.mark.parametrize("name", TASKS)
def test_every_request_and_score_matches_lm_eval(definitions, name):
    reference, ours = (d[name] for d in definitions)
    ref_docs, our_docs = list(reference.eval_docs), list(ours.eval_docs)
    assert len(ref_docs) == len(our_docs) == 817
    rng = random.Random(0)
    for ref_doc, our_doc in zip(ref_docs, our_docs):
        assert reference.doc_to_text(ref_doc) == ours.doc_to_text(our_doc)
        assert reference.doc_to_choice(ref_doc) == ours.doc_to_choice(our_doc)
        assert reference.doc_to_target(ref_doc) == ours.doc_to_target(our_doc)
        results = [(rng.uniform(-30.0, -1.0), False) for _ in reference.doc_to_choice(ref_doc)]
        expected = reference.process_results(ref_doc, results)["acc"]
        assert ours.process_results(our_doc, results)["acc"] == pytest.approx(expected, abs=1e-12)


def test_tiny_model_scores_each_item_as_lm_eval_does(definitions, tiny_model):
    from lm_eval import simple_evaluate

    from harness.backends import make_backend
    from harness.lm_eval_adapter import HarnessLM

    lm = HarnessLM(make_backend(str(tiny_model), cache=False, progress=False))
    for name in TASKS:
        scores = []
        for definition in definitions:
            out = simple_evaluate(
                model=lm, tasks=[definition[name]], limit=16, log_samples=True, bootstrap_iters=0
            )
            scores.append([r["acc"] for r in sorted(out["samples"][name], key=lambda r: r["doc_id"])])
        assert len(scores[0]) == 16
        assert scores[1] == pytest.approx(scores[0], abs=1e-9)
