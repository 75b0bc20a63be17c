"""The Telugu example's discriminator (examples/telugu_codec/adversarial.py)."""

import pytest
import torch

from examples.telugu_codec.adversarial import RESOLUTIONS, MultiResolutionDiscriminator


def test_one_logit_map_and_feature_maps_per_resolution():
    torch.manual_seed(0)
    disc = MultiResolutionDiscriminator(channels=4)
    out = disc(torch.randn(2, 1, 4000))
    assert len(out) == len(RESOLUTIONS)
    for logits, feats in out:
        assert logits.shape[:2] == (2, 1) and len(feats) == 5
        assert all(torch.isfinite(f).all() for f in feats)


def test_feature_matching_is_zero_on_the_input_and_the_losses_reach_the_output_only():
    torch.manual_seed(0)
    disc = MultiResolutionDiscriminator(channels=4)
    real = torch.randn(2, 1, 4000)
    _, fm = disc.generator_losses(real.clone(), real)
    assert float(fm.detach()) == 0.0
    fake = (0.5 * torch.randn(2, 1, 4000)).requires_grad_(True)
    adv, fm = disc.generator_losses(fake, real)
    assert float(fm) > 0
    (grad,) = torch.autograd.grad(adv + fm, fake)
    assert grad.abs().sum() > 0


def test_discriminator_hinge_loss_is_zero_once_it_separates_by_the_margin():
    disc = MultiResolutionDiscriminator(channels=4)
    real, fake = torch.randn(1, 1, 4000), torch.randn(1, 1, 4000)
    for d in disc.discs:  # logits +2 on real, -2 on fake: a constant bias by input energy
        torch.nn.init.zeros_(d.out.weight)
    for d in disc.discs:
        torch.nn.init.constant_(d.out.bias, 2.0)
    assert float(disc.discriminator_loss(real, fake)) == pytest.approx(3.0)  # fake at +2: 1 + 2
    for d in disc.discs:
        torch.nn.init.constant_(d.out.bias, 0.0)
    assert float(disc.discriminator_loss(real, fake)) == pytest.approx(2.0)  # both at 0
