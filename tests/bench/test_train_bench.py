"""The training benchmark runs end to end on the real data and reports every column."""

from bench.train_bench import run


def test_training_bench_times_both_loops_and_both_precisions(data_dir, monkeypatch):
    monkeypatch.setenv("GANSERVE_DATA_DIR", str(data_dir))
    md = run(steps=2, rounds=1, batches=(8,))
    header = next(line for line in md.splitlines() if line.startswith("| batch"))
    assert "`--precision bf16`" in header
    row = next(line for line in md.splitlines() if line.startswith("| 8 |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert len(cells) == header.count("|") - 1
    numbers = [float(c.rstrip("x%").replace(",", "")) for c in cells]
    images_per_second = numbers[1:3] + numbers[4:6] + numbers[8:13]
    assert all(n > 0 for n in images_per_second) and numbers[6] >= 0, row
    assert "D not frozen" in header


def test_the_unfrozen_arm_computes_d_weight_gradients_in_g_step(monkeypatch):
    # The arm that measures what freezing D saves must really run G's step with D's
    # weights trainable: then D's gradients after a step hold G's backward as well,
    # on top of the D step's own (both arms draw the same weights, latents and batch).
    import torch

    from bench.train_bench import _adversarial_step_fn
    from training import steps

    grads = []
    original = steps.AdversarialStep.generator_step

    def spy(self, *args, **kwargs):
        out = original(self, *args, **kwargs)
        grads.append([p.grad.clone() for p in self.d.parameters()])
        return out

    monkeypatch.setattr(steps.AdversarialStep, "generator_step", spy)
    real = torch.rand(4, 1, 28, 28) * 2 - 1
    for freeze_d in (True, False):
        _adversarial_step_fn(torch.device("cpu"), "fp32", freeze_d=freeze_d)(real)
    frozen, unfrozen = grads
    assert not all(torch.equal(a, b) for a, b in zip(frozen, unfrozen, strict=True))
