"""The image-to-image nets and parts: ResNet and U-Net generators, the PatchGAN (its receptive field measured on the
gradient), the norm factory, the history pool, the least-squares GAN loss."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from src.nets.image_pool import ImagePool
from src.nets.losses import LeastSquaresGANLoss, VanillaGANLoss, lsgan_fake, lsgan_real
from src.nets.norms import conv_bias
from src.nets.patchgan import PatchGAN
from src.nets.resnet_generator import ResnetGenerator
from src.nets.unet_generator import UnetGenerator
from src.utils.errors import ConfigError


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize(("channels_in", "channels_out", "side"), [(3, 3, 32), (1, 3, 16), (3, 1, 24)])
def test_resnet_generator_keeps_the_size_and_maps_into_minus_one_one(channels_in, channels_out, side):
    net = ResnetGenerator(channels_in, channels_out, base_channels=4, n_blocks=2)
    out = net(torch.randn(2, channels_in, side, side) * 3)
    assert out.shape == (2, channels_out, side, side)
    assert out.abs().max() <= 1
    with pytest.raises(ValueError, match="divisible by 4"):
        net(torch.zeros(1, channels_in, 30, 30))


def test_resnet_generator_with_one_down_sampling_step_keeps_a_grid_twice_as_fine():
    net = ResnetGenerator(3, 3, base_channels=4, n_blocks=1, n_downsampling=1)
    inner = {}
    up = next(m for m in net.modules() if isinstance(m, nn.ConvTranspose2d))
    up.register_forward_hook(lambda m, i, o: inner.update(blocks=i[0].shape))  # what the blocks output
    assert net(torch.zeros(1, 3, 30, 30)).shape == (1, 3, 30, 30)  # sides need only be even
    assert inner["blocks"] == (1, 8, 15, 15)  # one step: 2× the width at half the side
    with pytest.raises(ValueError, match="divisible by 2 \\(1 stride-2 steps\\)"):
        net(torch.zeros(1, 3, 31, 31))


def test_resnet_generator_has_the_papers_layers():
    net = ResnetGenerator(base_channels=64, n_blocks=9)
    convs = [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    # c7s1-64, d128, d256, 9 × R256 (2 convs), u128, u64, c7s1-3
    assert [(m.kernel_size[0], m.out_channels) for m in convs] == (
        [(7, 64), (3, 128), (3, 256)] + [(3, 256)] * 18 + [(3, 128), (3, 64), (7, 3)])
    assert sum(isinstance(m, nn.ReflectionPad2d) for m in net.modules()) == 2 + 18
    # The reference resnet_9blocks with instance norm: 11,378,179 parameters.
    assert sum(p.numel() for p in net.parameters()) == 11_378_179


def test_unet_generator_shapes_skips_and_dropout():
    net = UnetGenerator(3, 2, num_downs=5, base_channels=4)
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 2, 32, 32)
    with pytest.raises(ValueError, match="divisible by 32"):
        net(torch.zeros(1, 3, 48, 48))
    # Dropout on the first 3 decoder layers only (the paper's CD512 ×3), none in the encoder.
    assert [any(isinstance(m, nn.Dropout) for m in layer.modules()) for layer in net.decoder] == [True] * 3 + [False] * 2
    assert not any(isinstance(m, nn.Dropout) for m in net.encoder.modules())
    # The reference unet_256 with batch norm: 54,413,955 parameters.
    assert sum(p.numel() for p in UnetGenerator(num_downs=8).parameters()) == 54_413_955


def test_unet_skips_carry_the_input_detail():
    """With the bottleneck's output zeroed, the output still depends on the input: through the skips."""
    torch.manual_seed(0)
    net = UnetGenerator(1, 1, num_downs=3, base_channels=4, dropout=0).eval()
    net.decoder[0].register_forward_hook(lambda module, args, out: torch.zeros_like(out))
    x = torch.randn(1, 1, 8, 8)
    assert not torch.allclose(net(x), net(x + 1))


def _receptive_field(net: nn.Module, side: int) -> tuple[int, int]:
    """The extent (rows, columns) of the input pixels one central output logit depends on: its non-zero gradient."""
    x = torch.randn(1, net.in_channels, side, side, dtype=torch.float64, requires_grad=True)
    logits = net(x)
    logits[0, 0, logits.shape[2] // 2, logits.shape[3] // 2].backward()
    rows, cols = (x.grad[0].abs().sum(0) > 0).nonzero(as_tuple=True)
    return int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)


@pytest.mark.parametrize(("n_layers", "field"), [(3, 70), (1, 16), (2, 34)])
def test_patchgan_receptive_field_is_measured_on_the_gradient(n_layers, field):
    torch.manual_seed(0)
    # Without norm: instance norm's statistics reach across the whole image, by design not part of a patch's view.
    net = PatchGAN(3, base_channels=2, n_layers=n_layers, norm=nn.Identity).double()
    assert _receptive_field(net, 160) == (field, field)


def test_patchgan_output_per_patch_and_conditional_channels():
    assert PatchGAN(3, base_channels=4)(torch.zeros(2, 3, 256, 256)).shape == (2, 1, 30, 30)  # the reference's 30×30
    assert PatchGAN(6, base_channels=4)(torch.zeros(1, 6, 64, 64)).shape == (1, 1, 6, 6)
    # The reference's 70×70 D with instance norm: 2,764,737 parameters.
    assert sum(p.numel() for p in PatchGAN().parameters()) == 2_764_737


def test_conv_bias_only_where_the_norm_has_no_shift():
    assert conv_bias(nn.InstanceNorm2d) and conv_bias(nn.Identity)
    assert not conv_bias(nn.BatchNorm2d)
    assert all(m.bias is None for m in PatchGAN(norm=nn.BatchNorm2d).net[2:-1] if isinstance(m, nn.Conv2d))
    instance = nn.InstanceNorm2d(4)
    assert not instance.affine and not instance.track_running_stats  # the reference get_norm_layer('instance')


def test_lsgan_loss_is_the_squared_distance_to_the_target():
    scores = torch.tensor([[0.0, 2.0], [1.0, -1.0]])
    assert lsgan_real(scores) == pytest.approx((1 + 1 + 0 + 4) / 4)
    assert lsgan_fake(scores) == pytest.approx((0 + 4 + 1 + 1) / 4)
    assert LeastSquaresGANLoss.real is lsgan_real and VanillaGANLoss().fake(torch.tensor([0.0])) == pytest.approx(0.6931, 1e-4)


def _images(n: int, start: int) -> torch.Tensor:
    """n images, image i filled with the value start + i (so each can be traced)."""
    return (start + torch.arange(n, dtype=torch.float32)).view(n, 1, 1, 1).expand(n, 3, 4, 4).clone()


def _ids(images: torch.Tensor) -> list[int]:
    return images[:, 0, 0, 0].long().tolist()


def test_pool_fills_then_swaps_about_half():
    pool = ImagePool(size=50, image_shape=(3, 4, 4))
    generator = torch.Generator().manual_seed(0)
    first = pool.query(_images(30, 0), generator)
    assert _ids(first) == list(range(30)) and int(pool.count) == 30  # filling: returned as they are
    second = pool.query(_images(20, 30), generator)
    assert _ids(second) == list(range(30, 50)) and int(pool.count) == 50
    assert sorted(_ids(pool.images)) == list(range(50))
    swapped = 0
    for step in range(20):
        new = _images(50, 1000 + 100 * step)
        before = set(_ids(pool.images))
        out = pool.query(new, generator)
        for i, (returned, fresh) in enumerate(zip(_ids(out), _ids(new))):
            if returned != fresh:
                # A swapped image was stored: before this batch, or by an earlier image of it (as the reference).
                assert returned in before | set(_ids(new)[:i])
                swapped += 1
        assert int(pool.count) == 50 and pool.images.shape == (50, 3, 4, 4)
    assert 0.4 < swapped / 1000 < 0.6  # 1,000 coin flips at p = 1/2: within ±6σ


def test_pool_history_is_in_the_state_dict_and_draws_follow_the_generator():
    pool = ImagePool(size=4, image_shape=(3, 4, 4))
    pool.query(_images(6, 0), torch.Generator().manual_seed(1))
    copy = ImagePool(size=4, image_shape=(3, 4, 4))
    copy.load_state_dict(pool.state_dict())
    assert torch.equal(copy.images, pool.images) and int(copy.count) == 4
    new = _images(8, 100)
    assert torch.equal(pool.query(new, torch.Generator().manual_seed(2)), copy.query(new, torch.Generator().manual_seed(2)))
    assert torch.equal(ImagePool(size=0, image_shape=(3, 4, 4)).query(new), new)
    with pytest.raises(ConfigError, match="size=-1"):
        ImagePool(size=-1)
