"""One training step per architecture x loss, resume, and the run directory's artifacts."""

import json

import pytest
import torch
from training_testlib import fake_options

from training.checkpoint import load_checkpoint, load_generator
from training.loop import TrainOptions, training_loop
from training.losses import LOSSES
from training.networks import ARCHITECTURES, build_generator


@pytest.mark.parametrize("loss", sorted(LOSSES))
@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_one_step_changes_weights_with_finite_losses(tmp_path, arch, loss):
    opts = fake_options(tmp_path, arch=arch, loss=loss, limit=8, batch_size=8, n_critic=1)
    run = training_loop(opts, log=lambda *_: None)
    ckpt = load_checkpoint(run / "checkpoint-000001.pt")
    torch.manual_seed(0)  # the loop seeds with options.seed (0) before building the networks
    kw = {"num_classes": 10} if ARCHITECTURES[arch].conditional else {}
    g_init = build_generator(arch, **kw)
    changed = [
        not torch.equal(g_init.state_dict()[k], v)
        for k, v in ckpt["G"].items()
        if v.is_floating_point()
    ]
    assert any(changed), "G's weights did not change"
    epochs = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    losses = [r[k] for r in epochs for k in ("d_loss", "g_loss")]
    assert losses and all(torch.isfinite(torch.tensor(v)) for v in losses)
    assert ckpt["loss"] == loss and ckpt["step"] == 1


def test_run_directory_has_every_artifact(tmp_path):
    run = training_loop(
        fake_options(tmp_path, epochs=2, checkpoint_every=1, ema=0.9), log=lambda *_: None
    )
    assert run.name == "00000-dcgan-fake"
    names = {p.name for p in run.iterdir()}
    assert {
        "training_options.json",
        "stats.jsonl",
        "losses.png",
        "samples-000001.png",
        "samples-000002.png",
        "checkpoint-000001.pt",
        "checkpoint-000002.pt",
    } <= names
    opts = json.loads((run / "training_options.json").read_text())
    assert opts["arch"] == "dcgan" and opts["loss"] == "bce" and opts["beta1"] == 0.5
    stats = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    assert {r["kind"] for r in stats} == {"step", "epoch"}
    assert all(r["images_per_second"] > 0 for r in stats)
    g, ckpt = load_generator(run / "checkpoint-000002.pt")
    assert ckpt["G_ema"] is not None and ckpt["epoch"] == 2
    assert g(torch.zeros(1, 100)).shape == (1, 1, 28, 28)
    second = training_loop(fake_options(tmp_path), log=lambda *_: None)
    assert second.name == "00001-dcgan-fake"


def test_resume_continues_exactly_like_an_uninterrupted_run(tmp_path):
    straight = training_loop(
        fake_options(tmp_path / "a", epochs=2, checkpoint_every=1), log=lambda *_: None
    )
    first = training_loop(fake_options(tmp_path / "b", epochs=1), log=lambda *_: None)
    resumed = training_loop(
        fake_options(tmp_path / "b", epochs=2, resume=str(first / "checkpoint-000001.pt")),
        log=lambda *_: None,
    )
    a = load_checkpoint(straight / "checkpoint-000002.pt")
    b = load_checkpoint(resumed / "checkpoint-000002.pt")
    assert a["epoch_stats"][-1]["d_loss"] == b["epoch_stats"][-1]["d_loss"]
    assert a["epoch_stats"][-1]["g_loss"] == b["epoch_stats"][-1]["g_loss"]
    for k, v in a["G"].items():
        assert torch.equal(v, b["G"][k]), k


def test_real_fashion_mnist_subset(tmp_path, data_dir):
    run = training_loop(
        TrainOptions(
            arch="mlp-small",
            dataset="fashion-mnist",
            data_dir=str(data_dir),
            limit=512,
            epochs=1,
            batch_size=64,
            progress=False,
            out=str(tmp_path),
        ),
        log=lambda *_: None,
    )
    ckpt = load_checkpoint(run / "checkpoint-000001.pt")
    assert ckpt["dataset"]["class_names"][7] == "Sneaker"
    assert ckpt["dataset"]["image_shape"] == [1, 28, 28]


def test_checkpoint_records_the_command_that_reproduces_the_run(tmp_path):
    from training.train import build_parser, options_from_args

    opts = fake_options(tmp_path, epochs=1, ema=0.5, g_kwargs={"width": 8}, d_kwargs={"width": 8})
    run = training_loop(opts, log=lambda *_: None)
    command = load_checkpoint(run / "checkpoint-000001.pt")["stats"]["command"]
    assert command.startswith("python -m training.train ")
    import shlex

    args = build_parser().parse_args(shlex.split(command)[3:] + ["--out", str(tmp_path)])
    again = options_from_args(args)
    assert (again.arch, again.ema, again.g_kwargs, again.limit) == ("dcgan", 0.5, {"width": 8}, 64)


def test_mode_seeking_pairs_labels_and_rewards_spread():
    from training.steps import mode_seeking, pair_labels

    labels = torch.tensor([3, 1, 4, 1, 5, 9, 2])
    assert pair_labels(labels).tolist() == [3, 1, 4, 3, 1, 4, 2]  # i and i + 3 share a label
    z = torch.randn(8, 100)
    spread = torch.rand(8, 1, 28, 28) * 2 - 1
    copies = spread[:1].expand(8, -1, -1, -1) + 1e-3 * torch.rand(8, 1, 28, 28)
    # a G whose images do not move with z pays far more than one whose images do
    assert mode_seeking(copies, z) > 100 * mode_seeking(spread, z)


def test_mode_seeking_run_trains_a_conditional_model(tmp_path):
    opts = fake_options(tmp_path, arch="cdcgan", limit=16, batch_size=8, ms_lambda=1.0)
    run = training_loop(opts, log=lambda *_: None)
    stats = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    assert all(torch.isfinite(torch.tensor(r["g_loss"])) for r in stats if r["kind"] == "epoch")
    assert json.loads((run / "training_options.json").read_text())["ms_lambda"] == 1.0


def test_g_step_skips_d_weight_gradients_and_updates_g_as_before():
    """G's step runs D frozen: G's gradients are those of the unfrozen computation, D's
    weights get none from it and stay trainable for the next D step."""
    from training.losses import get_loss
    from training.networks import build_discriminator
    from training.steps import AdversarialStep, Batch

    torch.manual_seed(0)
    g, d = build_generator("dcgan"), build_discriminator("dcgan")
    step = AdversarialStep(g, d, get_loss("bce"), fake_options(".", loss="bce").resolved())
    fake = g(torch.randn(8, 100))
    batch = Batch(torch.rand(8, 1, 28, 28) * 2 - 1, None, None)

    d_state = {k: v.clone() for k, v in d.state_dict().items()}
    expected_loss = get_loss("bce").g_loss(d(fake))
    expected = torch.autograd.grad(expected_loss, list(g.parameters()), retain_graph=True)
    d.load_state_dict(d_state)  # undo the BatchNorm statistics that forward counted

    step.opt_g.step = lambda *a, **k: None  # keep G's gradients to compare them
    step.ema = None
    step.generator_step(batch, fake)
    for p, want in zip(g.parameters(), expected, strict=True):
        torch.testing.assert_close(p.grad, want)
    assert all(p.grad is None for p in d.parameters())
    assert all(p.requires_grad for p in d.parameters())


def test_auxiliary_classifier_learns_the_real_labels_and_guides_g(tmp_path):
    """--ac-lambda: D's label-blind classifier head trains (it is in D's checkpoint and
    moved), and G's loss carries its cross-entropy."""
    opts = fake_options(tmp_path, arch="cdcgan", limit=32, batch_size=16, ac_lambda=1.0)
    run = training_loop(opts, log=lambda *_: None)
    ckpt = load_checkpoint(run / "checkpoint-000001.pt")
    head = {k: v for k, v in ckpt["D"].items() if k.startswith("classifier.")}
    assert head, "D's checkpoint has no classifier head"
    from training.networks import build_discriminator

    torch.manual_seed(0)
    build_generator("cdcgan", num_classes=10)  # the loop builds G first, from the same seed
    d_init = build_discriminator("cdcgan", num_classes=10, aux_classifier=True)
    assert any(not torch.equal(d_init.state_dict()[k], v) for k, v in head.items())
    assert ckpt["d_kwargs"]["aux_classifier"] is True


def test_class_loss_is_cross_entropy_of_the_label_blind_head():
    from training.losses import get_loss
    from training.networks import build_discriminator
    from training.steps import AdversarialStep

    torch.manual_seed(0)
    g = build_generator("cdcgan", num_classes=10)
    d = build_discriminator("cdcgan", num_classes=10, aux_classifier=True)
    o = fake_options(".", arch="cdcgan", loss="bce", ac_lambda=1.0).resolved()
    step = AdversarialStep(g, d, get_loss("bce"), o)
    x, labels = torch.rand(4, 1, 28, 28), torch.tensor([0, 3, 5, 9])
    want = torch.nn.functional.cross_entropy(d.classify(x), labels)
    torch.testing.assert_close(step._class_loss(x, labels), want)
    assert d.classify(x).shape == (4, 10)


@pytest.mark.parametrize(
    ("arch", "message"),
    [("dcgan", "needs a conditional architecture"), ("dcgan-cond", "no auxiliary classifier")],
)
def test_ac_lambda_where_it_cannot_apply_is_one_line(tmp_path, capsys, arch, message):
    from training.train import main as train_main

    out = tmp_path / "runs"
    code = train_main(
        [
            "--arch",
            arch,
            "--dataset",
            "fake",
            "--limit",
            "16",
            "--batch-size",
            "8",
            "--ac-lambda",
            "1",
            "--out",
            str(out),
        ]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and "\n" not in err
    assert not out.exists() or not any(out.iterdir())


def test_infogan_reads_a_uniform_code_from_the_latent():
    torch.manual_seed(0)
    g = build_generator("infogan").eval()
    z = torch.randn(20000, 100)
    share = torch.bincount(g.code(z), minlength=10) / len(z)
    assert torch.all((share - 0.1).abs() < 0.015)
    # the image depends on the code: the same latents drawn with another code differ
    z = torch.randn(4, 100)
    z[:, 0] = 10.0
    assert torch.equal(g.code(z), torch.zeros(4, dtype=torch.long))
    images = g(z)
    g.code = lambda z: torch.full((z.shape[0],), 5)
    assert not torch.allclose(images, g(z), atol=1e-3)


@pytest.mark.parametrize("info_lambda", [0.0, 1.0])
def test_infogan_term_trains_q_only_when_on(info_lambda):
    from training.losses import get_loss
    from training.networks import build_discriminator
    from training.steps import AdversarialStep, Batch

    torch.manual_seed(0)
    g, d = build_generator("infogan"), build_discriminator("infogan")
    o = fake_options(".", arch="infogan", loss="bce", info_lambda=info_lambda).resolved()
    step = AdversarialStep(g, d, get_loss("bce"), o)
    q_before = [p.clone() for p in d.q.parameters()]
    d_loss, g_loss = step.step(Batch(torch.rand(8, 1, 28, 28) * 2 - 1, None, None), 0)
    moved = any(not torch.equal(a, b) for a, b in zip(q_before, d.q.parameters(), strict=True))
    assert moved == (info_lambda > 0)
    assert g_loss is not None and torch.isfinite(torch.tensor([d_loss, g_loss])).all()


def test_mode_seeking_pairs_of_an_infogan_share_their_code():
    from training.steps import pair_codes

    g = build_generator("infogan")
    z = torch.randn(9, 100)
    drawn = z.clone()
    paired = pair_codes(z, g.codes)
    assert torch.equal(g.code(paired[:4]), g.code(paired[4:8]))
    assert torch.equal(paired[4:8, 10:], z[4:8, 10:])  # the rest of the latent stays drawn
    assert torch.equal(paired[8], z[8]) and torch.equal(z, drawn)  # the caller's z is untouched
