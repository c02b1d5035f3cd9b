import pytest
import torch

from training.networks import (
    ARCHITECTURES,
    apply_spectral_norm,
    build_discriminator,
    build_generator,
    count_parameters,
)

REPORT_ARCHS = {"mlp-small", "mlp", "mlp-residual", "dcgan", "dcgan-upsample", "cgan", "dcgan64"}


def test_every_report_architecture_is_registered():
    assert REPORT_ARCHS <= set(ARCHITECTURES)
    assert any(s.conditional and "conv" in s.description for s in ARCHITECTURES.values())


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
@pytest.mark.parametrize("batch", [1, 64])
def test_forward_shapes(arch, batch):
    spec = ARCHITECTURES[arch]
    g, d = build_generator(arch).eval(), build_discriminator(arch).eval()
    z = torch.randn(batch, g.latent_dim)
    cond = (torch.randint(0, g.num_classes, (batch,)),) if spec.conditional else ()
    with torch.no_grad():
        x = g(z, *cond)
        scores = d(x, *cond)
    assert x.shape == (batch, *spec.image_shape)
    assert x.min() >= -1 and x.max() <= 1
    assert scores.shape == (batch,)
    assert torch.isfinite(scores).all()


def test_report_layers_are_exact():
    g = build_generator("dcgan")
    convs = [m for m in g.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.stride, c.padding) for c in convs] == [
        (100, 128, (7, 7), (1, 1), (0, 0)),
        (128, 64, (4, 4), (2, 2), (1, 1)),
        (64, 1, (4, 4), (2, 2), (1, 1)),
    ]
    assert all(c.bias is None for c in convs)
    small = build_generator("mlp-small")
    lin = [m for m in small.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in lin] == [(100, 128), (128, 784)]
    cgan_d = build_discriminator("cgan")
    assert cgan_d.net[0].in_features == 794
    assert count_parameters(build_generator("mlp-small")) == 100 * 128 + 128 + 128 * 784 + 784


def test_spectral_norm_option_wraps_every_layer():
    d = apply_spectral_norm(build_discriminator("dcgan"))
    layers = [m for m in d.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    assert layers and all(hasattr(m, "weight_orig") for m in layers)


@pytest.mark.parametrize("batch", [1, 6, 64])
def test_minibatch_stddev_lets_the_projection_critic_see_a_collapsed_batch(batch):
    torch.manual_seed(0)
    d = build_discriminator("dcgan-cond", width=8, mbstd=True).eval()
    labels = torch.zeros(batch, dtype=torch.long)
    varied = torch.rand(batch, 1, 28, 28) * 2 - 1
    copies = varied[:1].expand(batch, -1, -1, -1)
    with torch.no_grad():
        assert d(varied, labels).shape == (batch,)
        score_of_first = d(copies, labels)[0], d(varied, labels)[0]
    # the first image's score depends on what else is in its batch only with mbstd
    assert (score_of_first[0] != score_of_first[1]) == (batch > 1)
    plain = build_discriminator("dcgan-cond", width=8).eval()
    with torch.no_grad():
        assert torch.allclose(plain(copies, labels)[0], plain(varied, labels)[0])


@pytest.mark.parametrize("conditioning", ["concat", "projection"])
def test_cdcgan_critic_sees_its_batch_and_the_label(conditioning):
    """Training-mode BatchNorm gives the cdcgan critic batch statistics (a batch of
    copies scores differently from a varied one), and either conditioning makes
    the score depend on the class asked for."""
    torch.manual_seed(0)
    d = build_discriminator("cdcgan", width=8, conditioning=conditioning).train()
    varied = torch.rand(8, 1, 28, 28) * 2 - 1
    copies = varied[:1].expand(8, -1, -1, -1)
    zeros, ones = torch.zeros(8, dtype=torch.long), torch.ones(8, dtype=torch.long)
    with torch.no_grad():
        assert d(varied, zeros).shape == (8,)
        assert d(copies, zeros)[0] != d(varied, zeros)[0]
        d.eval()
        assert not torch.allclose(d(varied, zeros), d(varied, ones))
    with pytest.raises(ValueError, match="concat, projection or none"):
        build_discriminator("cdcgan", conditioning="film")


def test_cdcgan_critic_without_the_label_leaves_the_class_to_its_classifier():
    """``conditioning="none"`` (AC-GAN's D): the score is the same whatever class is
    asked for, the classifier tells the class, and without a classifier it is refused."""
    torch.manual_seed(0)
    d = build_discriminator("cdcgan", width=8, conditioning="none", aux_classifier=True).eval()
    x = torch.rand(8, 1, 28, 28) * 2 - 1
    with torch.no_grad():
        zeros, ones = torch.zeros(8, dtype=torch.long), torch.ones(8, dtype=torch.long)
        assert torch.equal(d(x, zeros), d(x, ones))
        assert d.classify(x).shape == (8, 10)
    with pytest.raises(ValueError, match="needs the auxiliary classifier"):
        build_discriminator("cdcgan", conditioning="none")


def test_dcgan_critic_on_classifier_features_trains_its_heads_never_the_classifier():
    """``features=<data set>``: four logits per image (D's and three heads' on the
    frozen domain classifier); a D update changes the heads, never the classifier,
    which stays in eval mode, out of the state dict, and passes G's gradient on."""
    torch.manual_seed(0)
    d = build_discriminator("dcgan", width=8, features="fashion-mnist").train()
    clf = d.features.classifier
    assert not clf.training
    before = {k: v.clone() for k, v in clf.state_dict().items()}
    heads = [p.clone() for p in d.features.parameters()]
    assert not any(k.startswith("features.classifier") for k in d.state_dict())
    x = (torch.rand(16, 1, 28, 28) * 2 - 1).requires_grad_(True)
    scores = d(x)
    assert scores.shape == (16, 4)
    opt = torch.optim.SGD(d.parameters(), lr=0.1)
    scores.mean().backward()
    opt.step()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(torch.equal(v, clf.state_dict()[k]) for k, v in before.items())
    assert any(not torch.equal(a, b) for a, b in zip(heads, d.features.parameters(), strict=True))
    assert not d.features.classifier.training


def test_dcgan_critic_of_classifier_features_alone_has_no_network_on_the_pixels():
    d = build_discriminator("dcgan", features="mnist", pixels=False).eval()
    assert d.net is None
    with torch.no_grad():
        assert d(torch.zeros(2, 1, 28, 28)).shape == (2, 3)


def test_dcgan_critic_refuses_features_of_an_unknown_data_set_or_no_scorer():
    with pytest.raises(ValueError, match="unknown"):
        build_discriminator("dcgan", features="cifar10")
    with pytest.raises(ValueError, match="nothing would score"):
        build_discriminator("dcgan", pixels=False)


@pytest.mark.parametrize("norm", ["batch", "layer", "none"])
def test_dcgan64_critic_norm_decides_whether_samples_are_scored_alone(norm):
    """The reports' BatchNorm critic scores a sample by its batch; with layer norm or
    none (for WGAN-GP's per-sample penalty) a sample's score is its own."""
    torch.manual_seed(0)
    d = build_discriminator("dcgan64", width=4, norm=norm).train()
    x = torch.rand(4, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        alone = torch.allclose(d(x)[:1], d(x[:1]), atol=1e-6)
    assert alone == (norm != "batch")


def test_dcgan64_critic_refuses_an_unknown_norm():
    with pytest.raises(ValueError, match="batch, layer, none"):
        build_discriminator("dcgan64", norm="instance")
