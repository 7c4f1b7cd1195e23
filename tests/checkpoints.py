"""Shared check of the baselines' tests: a model's state dict saved in train or eval mode loads
into a fresh model in either mode and evaluates identically (escnn caches expanded filters in eval
mode; RSteer keeps its sampled basis as a non-persistent buffer)."""
import io

import torch


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
