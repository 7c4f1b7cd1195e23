"""recalibrate_batchnorm: running statistics become the plain average of the batches' statistics,
the weights stay, the momenta come back, and the model is left in eval mode; training_batches
draws shuffled batches, so that class-sorted data recalibrate to the population's statistics."""
from types import SimpleNamespace

import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from approxeq.method.batchnorm import recalibrate_batchnorm, training_batches


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 5), st.integers(2, 9), st.integers(0, 2**16))
def test_running_statistics_are_the_average_of_the_batch_statistics(n_batches, batch, seed):
    gen = torch.Generator().manual_seed(seed)
    model = nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3, momentum=0.3), nn.ReLU(), nn.Flatten(),
                          nn.Linear(3 * 4 * 4, 5), nn.BatchNorm1d(5)).double()
    model[1].running_mean.fill_(7.0)  # stale statistics that must not survive
    weights = {k: v.clone() for k, v in model.state_dict().items() if "running" not in k and "num_batches" not in k}
    batches = [torch.randn(batch, 2, 6, 6, generator=gen, dtype=torch.float64) for _ in range(n_batches)]
    recalibrate_batchnorm(model, batches)
    with torch.no_grad():
        conv_out = [model[0](x) for x in batches]
        mean = torch.stack([o.mean((0, 2, 3)) for o in conv_out]).mean(0)
        var = torch.stack([o.var((0, 2, 3), unbiased=True) for o in conv_out]).mean(0)
    assert torch.allclose(model[1].running_mean, mean, atol=1e-12)
    assert torch.allclose(model[1].running_var, var, atol=1e-12)
    assert model[1].momentum == 0.3 and model[5].momentum == 0.1 and not model.training
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in weights.items())


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 2**16))
def test_class_sorted_data_recalibrate_to_the_population_statistics(seed):
    """Stored data sets are sorted by class. Here the feature is the class plus noise, so a batch
    of consecutive samples would see almost none of the population's variance (about 8.25); the
    shuffled pass recovers mean and variance, and covers every sample at most once."""
    classes = torch.arange(10, dtype=torch.float64).repeat_interleave(100)
    noise = torch.randn(1000, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    x = (classes + 0.1 * noise)[:, None]
    data = SimpleNamespace(x_train=x, group_order=1, epoch_views=None, prepare=lambda b: b)
    batches = list(training_batches(data, seed, batch_size=50))
    assert len(batches) == 20 and len(torch.cat(batches).unique()) == 1000
    layer = recalibrate_batchnorm(nn.BatchNorm1d(1).double(), batches)
    assert abs(layer.running_mean.item() - x.mean().item()) < 1e-9
    assert abs(layer.running_var.item() / x.var().item() - 1) < 0.15
