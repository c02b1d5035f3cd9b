"""``--precision bf16``: forward passes in bfloat16, all that learns in float32."""

import pytest
import torch
from torch import nn
from training_testlib import fake_options

from training import loop
from training.checkpoint import load_checkpoint
from training.loop import training_loop
from training.losses import get_loss
from training.networks import build_discriminator, build_generator
from training.steps import AdversarialStep, Batch
from training.train import main as train_main


def conv_output_dtypes(*nets: nn.Module) -> list[torch.dtype]:
    """Record the dtype of every conv / linear output of ``nets`` from now on."""
    seen: list[torch.dtype] = []
    for net in nets:
        for m in net.modules():
            if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
                m.register_forward_hook(lambda _m, _i, out: seen.append(out.dtype))
    return seen


def one_step(precision: str, loss: str = "bce", **kw) -> tuple[AdversarialStep, list, tuple]:
    torch.manual_seed(0)
    g, d = build_generator("dcgan"), build_discriminator("dcgan")
    o = fake_options(".", loss=loss, precision=precision, **kw).resolved()
    step = AdversarialStep(g, d, get_loss(loss), o)
    seen = conv_output_dtypes(g, d)
    losses = step.step(Batch(torch.rand(8, 1, 28, 28) * 2 - 1, None, None), 0)
    return step, seen, losses


@pytest.mark.parametrize(
    ("loss", "kw"), [("bce", {}), ("wgan-gp", {"n_critic": 1}), ("hinge", {"r1_gamma": 1.0})]
)
def test_bf16_runs_the_forward_passes_in_bfloat16_and_learns_in_float32(loss, kw):
    step, seen, (d_loss, g_loss) = one_step("bf16", loss, **kw)
    assert seen and set(seen) == {torch.bfloat16}
    assert torch.isfinite(torch.tensor([d_loss, g_loss])).all()
    for net in (step.g, step.d):
        assert {p.dtype for p in net.parameters()} == {torch.float32}
        assert all(p.grad is None or p.grad.dtype == torch.float32 for p in net.parameters())


def test_fp32_is_untouched_by_autocast():
    _, seen, _ = one_step("fp32")
    assert seen and set(seen) == {torch.float32}


def test_a_bf16_run_trains_checkpoints_float32_and_resumes_in_fp32(tmp_path):
    run = training_loop(fake_options(tmp_path, precision="bf16"), log=lambda *_: None)
    ckpt = load_checkpoint(run / "checkpoint-000001.pt")
    assert ckpt["options"]["precision"] == "bf16"
    assert all(v.dtype == torch.float32 for v in ckpt["G"].values() if v.is_floating_point())
    code = train_main(
        ["--resume", str(run), "--epochs", "2", "--precision", "fp32", "--no-progress"]
        + ["--out", str(tmp_path)]
    )
    assert code == 0
    assert load_checkpoint(run / "checkpoint-000002.pt")["options"]["precision"] == "fp32"


def test_an_unknown_precision_is_one_line_and_writes_nothing(tmp_path, capsys):
    code = train_main(["--dataset", "fake", "--precision", "fp16", "--out", str(tmp_path)])
    assert code == 2
    assert (
        capsys.readouterr().err.strip()
        == "error: --precision must be one of fp32, bf16, not 'fp16'"
    )
    assert not any(tmp_path.iterdir())


def test_bf16_on_a_cpu_without_native_bfloat16_is_warned_about(tmp_path, monkeypatch):
    lines: list[str] = []
    monkeypatch.setattr(loop, "cpu_bf16_native", lambda: False)
    training_loop(fake_options(tmp_path, precision="bf16"), log=lines.append)
    warnings = [line for line in lines if line.startswith("warning:")]
    assert len(warnings) == 1 and "--precision fp32" in warnings[0]
    lines.clear()
    training_loop(fake_options(tmp_path, precision="fp32"), log=lines.append)
    assert not [line for line in lines if line.startswith("warning:")]


def test_only_bf16_on_the_cpu_can_be_warned_about():
    assert loop.precision_warning("fp32", torch.device("cpu")) is None
    warning = loop.precision_warning("bf16", torch.device("cpu"))
    assert (warning is None) == loop.cpu_bf16_native()
    assert loop.precision_warning("bf16", torch.device("cuda")) is None
