"""Shared checkpoint checks: a model's state dict saved in train or eval mode loads into a fresh
model in either mode and evaluates identically (escnn caches expanded filters in eval mode; RSteer
keeps its sampled basis as a non-persistent buffer); a run interrupted after its first epoch
resumes to exactly what an uninterrupted run trains."""
import io

import pytest
import torch

from approxeq.experiments import setup_experiment
from approxeq.method.train import TrainConfig, seed_everything, train


def assert_checkpoints_load_across_train_and_eval_mode(build, x: torch.Tensor) -> None:
    """Train `build()` two Adam steps on `x`, then save in each mode and load into a fresh model
    in each mode: outputs equal bit for bit."""
    torch.manual_seed(0)
    trained = build()
    optimiser = torch.optim.Adam(trained.parameters(), 1e-2)
    for _ in range(2):
        optimiser.zero_grad()
        trained(x).pow(2).mean().backward()
        optimiser.step()
    for saved_in_train in (True, False):
        for loaded_in_train in (True, False):
            buffer = io.BytesIO()
            torch.save(trained.train(saved_in_train).state_dict(), buffer)
            buffer.seek(0)
            fresh = build().train(loaded_in_train)
            fresh.load_state_dict(torch.load(buffer, weights_only=True))
            with torch.no_grad():
                torch.testing.assert_close(fresh.eval()(x), trained.eval()(x), atol=0, rtol=0)


def assert_interrupted_run_resumes_bit_identically(settings: dict, cfg: TrainConfig, folder) -> None:
    """Train the experiment of `settings` straight, and again interrupted after epoch 1 and
    resumed from its checkpoint: best state and every epoch's record (timing aside) agree bit
    for bit (the per-epoch draws of a resumed run are those of an uninterrupted one)."""
    def trained(run_dir, on_epoch_end=None):
        seed_everything(0)
        setup = setup_experiment(settings, torch.device("cpu"))
        return train(setup.model, setup.data, cfg, run_dir, log=lambda m: None, on_epoch_end=on_epoch_end)

    def preempted(epoch):
        if epoch == 1:
            raise KeyboardInterrupt("simulated preemption")

    straight = trained(folder / "straight")
    with pytest.raises(KeyboardInterrupt):
        trained(folder / "resumed", preempted)
    resumed = trained(folder / "resumed")
    assert all(torch.equal(straight.best_state[k], resumed.best_state[k]) for k in straight.best_state)
    timing = ("seconds", "images_per_second")
    assert ([{k: v for k, v in r.items() if k not in timing} for r in straight.history]
            == [{k: v for k, v in r.items() if k not in timing} for r in resumed.history])
