"""The planner on its own: requests in, plans or domain errors out, no HTTP involved."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ganserve.latent import make_latents
from service.config import Settings
from service.errors import InvalidRequest, ModelNotFound
from service.planner import plan_conditional, plan_generate, plan_perturb
from service.registry import Registry, load_registry
from service.schemas import ConditionalRequest, GenerateRequest, PerturbRequest


@pytest.fixture(scope="module")
def registry(models_dir: Path) -> Registry:
    return load_registry(Settings(models_dir=models_dir, warmup=False))


SETTINGS = Settings.model_construct()


def test_a_plan_holds_the_seeds_latents_and_the_layout(registry: Registry) -> None:
    plan = plan_generate(GenerateRequest(model="dcgan-fashion", n=6, seed=4), registry, SETTINGS)
    assert plan.model.name == "dcgan-fashion" and plan.seed == 4
    assert np.array_equal(plan.z, make_latents(4, 6, plan.model.latent_dim))
    assert plan.labels is None and (plan.rows, plan.columns) == (2, 3)
    assert [c["index"] for c in plan.cells] == list(range(6))


def test_label_rows_are_the_same_plan_for_conditional_and_perturb_mode_label(
    registry: Registry,
) -> None:
    fields = {"model": "cgan-fashion", "labels": ["Bag", 0], "n": 3, "seed": 9}
    by_conditional = plan_conditional(ConditionalRequest(**fields), registry, SETTINGS)
    by_perturb = plan_perturb(PerturbRequest(mode="label", **fields), registry, SETTINGS)
    for plan in (by_conditional, by_perturb):
        assert plan.labels is not None and plan.labels.tolist() == [8, 8, 8, 0, 0, 0]
        assert np.array_equal(plan.z[:3], plan.z[3:])  # column j: one latent in every row
        assert plan.cells[4] == {"index": 1, "label": 0}
    assert np.array_equal(by_conditional.z, by_perturb.z)
    assert by_conditional.cells == by_perturb.cells


@pytest.mark.parametrize(
    ("plan", "request_", "field", "fragment"),
    [
        (plan_generate, GenerateRequest(n=10_000), "n", "n must be at most"),
        (plan_conditional, ConditionalRequest(labels=[]), "labels", "labels is empty"),
        (plan_conditional, ConditionalRequest(model="dcgan-fashion"), "model", "unconditional"),
        (plan_perturb, PerturbRequest(n=100), None, "1500 images (15 rows x 100 columns)"),
        (plan_perturb, PerturbRequest(mode="label", dims=[1]), "mode", "needs a conditional"),
    ],
)
def test_a_request_that_does_not_fit_raises_invalid_request_at_its_field(
    registry: Registry, plan, request_, field: str | None, fragment: str
) -> None:
    with pytest.raises(InvalidRequest, match=re.escape(fragment)) as e:
        plan(request_, registry, SETTINGS)
    assert e.value.field == field


def test_an_unknown_model_raises_model_not_found_with_the_served_ones(registry: Registry) -> None:
    with pytest.raises(ModelNotFound, match="unknown model 'nope'") as e:
        plan_generate(GenerateRequest(model="nope"), registry, SETTINGS)
    assert e.value.available == sorted(registry.models)


def test_the_planner_needs_no_web_framework() -> None:
    code = (
        "import sys, service.planner; "
        "assert not {'fastapi', 'starlette'} & set(sys.modules), 'a web framework was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
