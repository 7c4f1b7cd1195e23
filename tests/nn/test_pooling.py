"""DepthwiseAvgPool2d: nn.AvgPool2d itself on NCHW batches, the same average as a depthwise
convolution on channels-last ones (forward and gradient), and no state of its own."""
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from approxeq.nn.networks import DepthwiseAvgPool2d, ddmnist_cnn


def batch(n, c, size, dtype, channels_last):
    x = torch.randn(n, c, size, size, dtype=dtype, generator=torch.Generator().manual_seed(size * c))
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def value_and_grad(pool, x):
    x = x.detach().requires_grad_()
    y = pool(x)
    (y * torch.arange(y.numel(), dtype=y.dtype).reshape(y.shape).cos()).sum().backward()
    return y.detach(), x.grad


@pytest.mark.parametrize("kernel, stride, padding", [(5, 2, 1), (5, 1, 1), (3, 2, 0)])
def test_nchw_batches_take_avg_pool2d_itself(kernel, stride, padding):
    x = batch(4, 6, 15, torch.float32, channels_last=False)
    ours = value_and_grad(DepthwiseAvgPool2d(kernel, stride=stride, padding=padding), x)
    torch_s = value_and_grad(lambda t: F.avg_pool2d(t, kernel, stride, padding), x)
    assert torch.equal(ours[0], torch_s[0]) and torch.equal(ours[1], torch_s[1])


@settings(max_examples=25, deadline=None)
@given(kernel=st.integers(1, 5), stride=st.integers(1, 3), size=st.integers(5, 17), channels=st.integers(2, 13),
       data=st.data())
def test_channels_last_batches_average_as_avg_pool2d_does(kernel, stride, size, channels, data):
    padding = data.draw(st.integers(0, kernel // 2))
    pool = DepthwiseAvgPool2d(kernel, stride=stride, padding=padding)
    for dtype, tol in ((torch.float64, 1e-12), (torch.float32, 1e-5)):
        x = batch(3, channels, size, dtype, channels_last=True)
        assert not x.is_contiguous()  # so the depthwise path is the one taken
        y, grad = value_and_grad(pool, x)
        y_ref, grad_ref = value_and_grad(lambda t: F.avg_pool2d(t, kernel, stride, padding), x.contiguous())
        torch.testing.assert_close(y, y_ref, rtol=tol, atol=tol)
        torch.testing.assert_close(grad, grad_ref, rtol=tol, atol=tol)


def test_the_depthwise_path_is_taken_and_differs_only_by_rounding():
    """In float32 the convolution sums x/25 where avg_pool2d divides the sum by 25: some outputs
    differ in the last bit, which shows which path ran."""
    x = batch(8, 12, 27, torch.float32, channels_last=True)
    y = DepthwiseAvgPool2d(5, stride=2, padding=1)(x)
    y_ref = F.avg_pool2d(x.contiguous(), 5, 2, 1)
    assert y.is_contiguous(memory_format=torch.channels_last)
    assert not torch.equal(y, y_ref)
    torch.testing.assert_close(y, y_ref, rtol=1e-6, atol=1e-6)


def test_the_ddmnist_cnn_pools_without_state_so_checkpoints_are_unchanged():
    model = ddmnist_cnn(c=2)
    pools = [m for m in model.modules() if isinstance(m, torch.nn.AvgPool2d)]
    assert len(pools) == 3 and all(isinstance(m, DepthwiseAvgPool2d) for m in pools)
    assert all(not dict(m.state_dict()) for m in pools)
