import pytest
import torch
import torch.nn.functional as F
from torch import nn

from depthsense.errors import ShapeError
from depthsense.models.sparse_conv import SparseConv2d, SparseMaxPool2d, cat_channels, sparse_add, sparse_concat, sparse_upsample


def _random_mask(shape, density, seed):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=g) < density).float()


@pytest.mark.parametrize("k", [3, 5, 11])
def test_full_mask_equals_plain_conv_on_interior(k):
    layer = SparseConv2d(4, 6, k)
    nn.init.normal_(layer.bias)
    x = torch.randn(2, 4, 20, 24)
    y, m = layer(x, torch.ones(2, 1, 20, 24))
    # Our weight is W_paper / k^2: a full window gives conv(x, W_paper)/k^2 + b.
    ref = F.conv2d(x, layer.paper_weight, padding=k // 2) / (k * k) + layer.bias.view(1, -1, 1, 1)
    r = k // 2
    torch.testing.assert_close(y[..., r:-r, r:-r], ref[..., r:-r, r:-r], rtol=1e-5, atol=1e-5)
    # ... which is exactly nn.Conv2d with the same weights.
    torch.testing.assert_close(
        y[..., r:-r, r:-r],
        F.conv2d(x, layer.weight, layer.bias, padding=k // 2)[..., r:-r, r:-r],
        rtol=1e-5,
        atol=1e-5,
    )
    assert torch.all(m == 1)


def test_partial_window_matches_hand_normalisation():
    layer = SparseConv2d(1, 1, 3, bias=True)
    with torch.no_grad():
        layer.weight.fill_(1.0 / 9)  # paper weight 1: output = mean of valid pixels
        layer.bias.fill_(0.5)
    x = torch.arange(25.0).view(1, 1, 5, 5)
    m = torch.zeros(1, 1, 5, 5)
    m[0, 0, 1, 1] = m[0, 0, 1, 2] = m[0, 0, 3, 3] = 1
    y, new_m = layer(x, m)
    # Centre (2,2): window rows 1-3, cols 1-3 has valid values 6, 7, 18.
    assert y[0, 0, 2, 2].item() == pytest.approx((6 + 7 + 18) / 3 + 0.5)
    # (0,0): window rows 0-1 cols 0-1 sees only pixel (1,1)=6.
    assert y[0, 0, 0, 0].item() == pytest.approx(6 + 0.5)
    # (0,4): window rows 0-1, cols 3-4: nothing valid -> 0, mask 0, bias not added.
    assert y[0, 0, 0, 4].item() == 0.0 and new_m[0, 0, 0, 4].item() == 0.0
    torch.testing.assert_close(new_m, F.max_pool2d(m, 3, 1, 1))


@pytest.mark.parametrize("seed", range(5))
def test_values_under_zero_mask_do_not_matter(seed):
    layer = SparseConv2d(3, 5, 5, stride=2 if seed % 2 else 1)
    x = torch.randn(2, 3, 21, 30)
    m = _random_mask((2, 1, 21, 30), 0.1 + 0.15 * seed, seed)
    junk = x + (1 - m) * torch.randn_like(x) * 1e3
    y1, m1 = layer(x, m)
    y2, m2 = layer(junk, m)
    torch.testing.assert_close(y1, y2)
    torch.testing.assert_close(m1, m2)


def test_all_zero_mask_gives_zero_finite_output():
    layer = SparseConv2d(2, 4, 7)
    nn.init.normal_(layer.bias)
    x = torch.randn(1, 2, 9, 9) * 1e6
    y, m = layer(x, torch.zeros(1, 1, 9, 9))
    assert torch.isfinite(y).all() and torch.all(y == 0) and torch.all(m == 0)
    y.sum().backward()
    assert torch.isfinite(layer.weight.grad).all()


def test_gradcheck_double():
    layer = SparseConv2d(2, 3, 3, stride=1).double()
    x = torch.randn(1, 2, 6, 7, dtype=torch.double, requires_grad=True)
    m = _random_mask((1, 1, 6, 7), 0.4, 3).double()
    assert torch.autograd.gradcheck(lambda inp, w, b: _functional(layer, inp, m, w, b), (x, layer.weight, layer.bias))


def _functional(layer, x, m, w, b):
    return torch.func.functional_call(layer, {"weight": w, "bias": b}, (x, m))[0]


@pytest.mark.parametrize(
    "mask_shape", [(2, 3, 8, 8), (2, 1, 8, 9), (1, 1, 8, 8), (2, 8, 8)]
)
def test_mask_shape_errors_name_both_shapes(mask_shape):
    layer = SparseConv2d(3, 4, 3)
    x = torch.randn(2, 3, 8, 8)
    with pytest.raises(ShapeError) as exc:
        layer(x, torch.ones(mask_shape))
    msg = str(exc.value)
    assert "(2, 3, 8, 8)" in msg and str(tuple(mask_shape)) in msg


def test_stride_and_padding_shapes():
    layer = SparseConv2d(1, 2, 3, stride=2)
    y, m = layer(torch.randn(1, 1, 17, 30), torch.ones(1, 1, 17, 30))
    assert y.shape == (1, 2, 9, 15) and m.shape == (1, 1, 9, 15)
    with pytest.raises(ValueError, match="odd kernel"):
        SparseConv2d(1, 1, 4)


def _paper_stack(density=0.05, fixed=True):
    kernels = (11, 7, 5, 3, 3, 1)
    chans = [1] + [16] * 5 + [1]
    return nn.ModuleList(
        SparseConv2d(chans[i], chans[i + 1], k, init_density=(density if (fixed and i == 0) else 1.0))
        for i, k in enumerate(kernels)
    )


def _run_stack(layers, x, m, record=None):
    for i, layer in enumerate(layers):
        x, m = layer(x, m)
        if i < len(layers) - 1:
            x = torch.relu(x)
        if record is not None:
            valid = m.expand_as(x) > 0
            record.append(x[valid].pow(2).mean().sqrt().item())
    return x


def test_initialisation_keeps_unit_scale_through_six_layers():
    torch.manual_seed(0)
    layers = _paper_stack(0.05)
    x = torch.randn(4, 1, 96, 96)
    m = _random_mask((4, 1, 96, 96), 0.05, 0)
    rms = []
    with torch.no_grad():
        _run_stack(layers, x * m, m, rms)
    # Post-ReLU RMS of a unit-variance pre-activation is ~0.71; the last layer is linear.
    assert all(0.3 < r < 2.0 for r in rms), rms
    # The paper's /count form with PyTorch's default conv init collapses instead.
    with torch.no_grad():
        collapsed = x * m
        cm = m
        for i, k in enumerate((11, 7, 5, 3, 3, 1)):
            conv = nn.Conv2d(1 if i == 0 else 16, 16 if i < 5 else 1, k, padding=k // 2, bias=False)
            count = F.avg_pool2d(cm, k, 1, k // 2) * k * k
            collapsed = torch.relu(conv(collapsed * cm) / count.clamp_min(1) * (count > 0))
            cm = F.max_pool2d(cm, k, 1, k // 2)
    assert collapsed.pow(2).mean().sqrt().item() < 1e-3 * rms[-1]


def _smooth_surfaces(n, size, seed, density=0.05):
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 1, 4, 4, generator=g) * 2 + 1
    gt = F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=True)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    gt = gt + 0.5 * xx + 0.3 * yy
    m = (torch.rand(n, 1, size, size, generator=g) < density).float()
    return gt, m


def test_six_layer_stack_learns_without_batchnorm():
    """Trained at 5 % density, the stack also completes dense input (the paper's sparsity
    invariance). Without the 1/count normalisation it learns at 5 % too, but its error on
    dense input is then ~4x its error at 5 % (measured 0.43 vs 0.11 m; with it 0.093 vs 0.087)."""
    # Tiny activations of the ReLU stack go subnormal; flushing them keeps the CPU fast.
    torch.set_flush_denormal(True)
    try:
        _train_six_layers_and_check()
    finally:
        torch.set_flush_denormal(False)


def _train_six_layers_and_check():
    torch.manual_seed(0)
    layers = _paper_stack(0.05)
    opt = torch.optim.Adam(layers.parameters(), lr=3e-3)

    def held_out_l1(density=0.05):
        test_gt, test_m = _smooth_surfaces(8, 48, seed=123, density=density)
        with torch.no_grad():
            pred = _run_stack(layers, test_gt * test_m, test_m)
            return (pred - test_gt).abs().mean().item()

    before = held_out_l1()
    for step in range(300):
        gt, m = _smooth_surfaces(8, 48, seed=step)
        pred = _run_stack(layers, gt * m, m)
        loss = (pred - gt).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = held_out_l1()
    assert after < 0.5 * before, (before, after)
    dense = held_out_l1(density=1.0)
    assert dense < 1.5 * after, (after, dense)


def test_sparse_maxpool_ignores_invalid_pixels():
    x = torch.tensor([[[[-5.0, 9.0], [-1.0, -3.0]]]])
    m = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]])
    y, nm = SparseMaxPool2d(2)(x, m)
    assert y.item() == -1.0 and nm.item() == 1.0
    y, nm = SparseMaxPool2d(2)(x, torch.zeros_like(m))
    assert y.item() == 0.0 and nm.item() == 0.0
    # Gradient reaches only the winning valid pixel.
    xg = x.clone().requires_grad_(True)
    SparseMaxPool2d(2)(xg, m)[0].sum().backward()
    assert xg.grad.tolist() == [[[[0.0, 0.0], [1.0, 0.0]]]]


def test_sparse_upsample_concat_add():
    x = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    m = torch.tensor([[[[1.0, 0.0], [1.0, 1.0]]]])
    up, um = sparse_upsample(x * m, m, 2)
    assert up.shape == (1, 1, 4, 4) and um[0, 0, 0, 2].item() == 0 and up[0, 0, 3, 3].item() == 4
    up2, um2 = sparse_upsample(x, m, size=(3, 5))
    assert up2.shape == (1, 1, 3, 5) and um2.shape == (1, 1, 3, 5)
    cat, cm = sparse_concat([x, 10 * x], [m, torch.ones_like(m)])
    assert cat.shape == (1, 2, 2, 2) and cat[0, 0, 0, 1].item() == 0 and torch.all(cm == 1)
    fused, fm = sparse_add(x, m, torch.full_like(x, 7.0), torch.tensor([[[[1.0, 1.0], [0.0, 0.0]]]]))
    assert fused[0, 0].tolist() == [[4.0, 7.0], [3.0, 4.0]] and torch.all(fm == 1)


@pytest.mark.parametrize("k", [(3, 3), (11, 11), (5, 3)])
def test_opencv_box_filter_path_matches_avg_pool(k):
    from depthsense.models.sparse_conv import _can_use_opencv, _window_fraction

    m = _random_mask((3, 1, 19, 33), 0.07, 1)
    pad = (k[0] // 2, k[1] // 2)
    assert _can_use_opencv(m, k, (1, 1), pad)
    frac, new_mask = _window_fraction(m, k, (1, 1), pad)
    ref = F.avg_pool2d(m, k, 1, pad, count_include_pad=True)
    torch.testing.assert_close(frac, ref, rtol=0, atol=1e-6)
    torch.testing.assert_close(new_mask, F.max_pool2d(m, k, 1, pad))


def test_cat_channels_keeps_channels_last_and_equals_torch_cat():
    """torch.cat returns NCHW when a one-channel part (both layouts at once) is involved;
    cat_channels keeps channels_last so the next convolution needs no layout copy."""
    cl = torch.channels_last
    parts = [torch.randn(2, 1, 6, 7).contiguous(memory_format=cl), torch.randn(2, 4, 6, 7).contiguous(memory_format=cl)]
    assert not torch.cat(parts, 1).is_contiguous(memory_format=cl)  # the behaviour worked around
    with torch.no_grad():
        out = cat_channels(parts)
    assert out.is_contiguous(memory_format=cl) and out.shape == (2, 5, 6, 7)
    torch.testing.assert_close(out, torch.cat(parts, 1), rtol=0, atol=0)
    nchw = [p.contiguous() for p in parts]
    assert cat_channels(nchw).is_contiguous()
    # with autograd it is the plain cat, and gradients flow
    grad_parts = [p.clone().requires_grad_() for p in nchw]
    cat_channels(grad_parts).sum().backward()
    assert all(p.grad is not None and torch.all(p.grad == 1) for p in grad_parts)
