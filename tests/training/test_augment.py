"""DiffAugment: what each policy does to a batch, and that G's gradient flows through it."""

import pytest
import torch

from training.augment import DiffAugment, parse_policy


def test_an_empty_policy_is_the_identity():
    x = torch.randn(4, 3, 8, 8)
    aug = DiffAugment("")
    assert not aug
    assert torch.equal(aug(x), x)


def test_translation_moves_the_content_and_pads_with_zeros():
    torch.manual_seed(0)
    x = torch.zeros(64, 1, 16, 16)
    x[:, :, 8, 8] = 1.0
    y = DiffAugment("translation")(x)
    assert y.shape == x.shape
    assert torch.equal(y.sum(dim=(1, 2, 3)), torch.ones(64))  # the dot is moved, not lost
    positions = {tuple(int(v) for v in torch.nonzero(img[0])[0]) for img in y}
    assert len(positions) > 10
    assert all(abs(r - 8) <= 2 and abs(c - 8) <= 2 for r, c in positions)


def test_cutout_zeroes_a_square_of_half_the_side():
    torch.manual_seed(0)
    y = DiffAugment("cutout")(torch.ones(32, 3, 16, 16))
    zeros = (y[:, 0] == 0).sum(dim=(1, 2))
    assert zeros.max() == 64  # 8 x 8 when the square lies inside
    assert (zeros > 0).all()
    assert torch.equal(y[:, 0], y[:, 2])  # every channel alike


def test_color_keeps_the_shape_and_gradients_flow():
    x = torch.randn(8, 3, 8, 8, requires_grad=True)
    y = DiffAugment("color,translation,cutout")(x)
    y.sum().backward()
    assert y.shape == x.shape
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_an_unknown_policy_names_the_choices():
    with pytest.raises(ValueError, match="unknown augmentation 'flip'.*color, translation"):
        parse_policy("color,flip")
