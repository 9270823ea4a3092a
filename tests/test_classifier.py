"""The classification nets (depthsense.models.classifier): invariance to dropped pixels, masked BN and pooling."""

import pytest
import torch
import torch.nn.functional as F

from depthsense.errors import ShapeError
from depthsense.models.classifier import (
    ConvNetClassifier,
    SparseBatchNorm2d,
    SparseConvNetClassifier,
    build_classifier,
    masked_avg_pool2d,
    masked_global_avg_pool,
)


def _inputs(b=3, c=1, h=28, w=28, keep=0.3, seed=0):
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(b, c, h, w, generator=g)
    mask = (torch.rand(b, 1, h, w, generator=g) < keep).float()
    return image, mask


@pytest.mark.parametrize("pool", ["max", "avg"])
@pytest.mark.parametrize("batchnorm", [False, True])
@pytest.mark.parametrize("training", [False, True])
def test_masked_out_pixel_values_do_not_change_the_sparse_logits(pool, batchnorm, training):
    net = build_classifier("sparse", in_ch=3, num_classes=5, width=4, batchnorm=batchnorm, pool=pool)
    net.train(training)
    image, mask = _inputs(c=3)
    garbage = image + (1 - mask) * torch.randn(image.shape, generator=torch.Generator().manual_seed(1)) * 100
    with torch.no_grad():
        a, b = net(image, mask), net(garbage, mask)
    assert torch.isfinite(a).all()
    assert torch.equal(a, b)
    # ...while an observed pixel does change them (the test above is not vacuous).
    changed = image.clone()
    ys, xs = torch.nonzero(mask[0, 0])[0]
    changed[0, :, ys, xs] += 5.0
    with torch.no_grad():
        c = net(changed, mask)
    assert not torch.allclose(a[0], c[0])


def test_both_nets_have_the_same_layers_and_parameter_count():
    for bn in (False, True):
        dense = build_classifier("convnet", 1, 10, width=8, batchnorm=bn)
        sparse = build_classifier("sparse", 1, 10, width=8, batchnorm=bn)
        assert isinstance(dense, ConvNetClassifier) and isinstance(sparse, SparseConvNetClassifier)
        shapes = lambda net: [tuple(p.shape) for p in net.parameters()]  # noqa: E731
        assert shapes(dense) == shapes(sparse)


def test_empty_mask_gives_finite_logits_and_shapes_are_checked():
    net = build_classifier("sparse", 1, 10, width=4)
    out = net(torch.rand(2, 1, 16, 16), torch.zeros(2, 1, 16, 16))
    assert out.shape == (2, 10) and torch.isfinite(out).all()
    with pytest.raises(ShapeError):
        net(torch.rand(2, 3, 16, 16), torch.ones(2, 1, 16, 16))  # 3 channels into a grey net
    with pytest.raises(ShapeError):
        net(torch.rand(2, 1, 16, 16), torch.ones(2, 1, 8, 8))
    with pytest.raises(KeyError, match="known classifiers"):
        build_classifier("resnet", 1, 10)
    with pytest.raises(ValueError, match="odd"):
        build_classifier("convnet", 1, 10, first_kernel=4)


def test_sparse_batch_norm_uses_observed_positions_only():
    torch.manual_seed(0)
    x, mask = torch.randn(4, 3, 5, 5) * 2 + 1, (torch.rand(4, 1, 5, 5) < 0.4).float()
    ours, ref = SparseBatchNorm2d(3), torch.nn.BatchNorm2d(3)
    with torch.no_grad():
        ours.weight.uniform_(0.5, 2)
        ours.bias.uniform_(-1, 1)
    ref.load_state_dict(ours.state_dict())
    y, m = ours(x, mask)
    valid = x.permute(1, 0, 2, 3)[:, mask[:, 0].bool()]  # (C, n_valid): the observed entries
    expected = ref(valid.T[:, :, None, None])[:, :, 0, 0].T  # nn.BatchNorm2d on them alone
    assert torch.equal(m, mask)
    assert torch.allclose(y.permute(1, 0, 2, 3)[:, mask[:, 0].bool()], expected, atol=1e-5)
    assert torch.equal(y * (1 - mask), torch.zeros_like(y))
    assert torch.allclose(ours.running_mean, ref.running_mean, atol=1e-6)
    assert torch.allclose(ours.running_var, ref.running_var, atol=1e-5)
    assert int(ours.num_batches_tracked) == 1
    ours.eval()
    ref.eval()
    y_eval, _ = ours(x, mask)
    assert torch.allclose(y_eval, ref(x) * mask, atol=1e-5)  # eval: running statistics, zero where missing


def test_masked_pools_average_observed_positions():
    x = torch.tensor([[[[1.0, 2.0], [3.0, 10.0]]]])
    mask = torch.tensor([[[[1.0, 1.0], [1.0, 0.0]]]])
    assert masked_global_avg_pool(x, mask).item() == pytest.approx(2.0)
    assert masked_global_avg_pool(x, torch.zeros_like(mask)).item() == 0.0  # empty: 0, not NaN
    y, m = masked_avg_pool2d(x, mask, 2)
    assert y.item() == pytest.approx(2.0) and m.item() == 1.0
    y, m = masked_avg_pool2d(x, torch.zeros_like(mask), 2)
    assert y.item() == 0.0 and m.item() == 0.0


def test_sparse_net_without_batchnorm_learns():
    # 30 Adam steps on two easy classes (a bright left or right half) with 80 % of pixels
    # dropped: a net that does not learn stays at 50 %.
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 2, (32,), generator=g)
    images = torch.zeros(32, 1, 16, 16)
    images[labels == 0, :, :, :8] = 1.0
    images[labels == 1, :, :, 8:] = 1.0
    torch.manual_seed(0)
    net = build_classifier("sparse", 1, 2, width=4, init_density=0.2)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(30):
        mask = (torch.rand(32, 1, 16, 16, generator=g) < 0.2).float()
        loss = F.cross_entropy(net(images, mask), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    mask = (torch.rand(32, 1, 16, 16, generator=g) < 0.2).float()
    accuracy = (net(images, mask).argmax(1) == labels).float().mean().item()
    assert accuracy > 0.9
