"""SMOKE autoregression (paper Section 6.3, appendix C.3) as an experiment of the shared trainer.

A sample is a window (simulation k, time t) into the stored velocity frames; the input is 10
frames × 2 components, the model predicts one frame at a time and is rolled out autoregressively.
The method's loss, with C4 acting on inputs and targets by rotating grid and vectors and on the
hidden×H×W latent by rotating the grid:

    L = w_task · MSE(rollout(x), y) + w_shift · MSE(F(g·x), g·y₁) + λ · MSE(E(g·x), rot_g E(x))

(w_shift on the first predicted frame only, as the authors' code). The augmented CNN of config.yaml
is this loss with λ = 0 (method.md; the authors' `--lambda_t=0`); `augment` instead trains the task
term on whole rotated windows (g·x, g·y); the plain CNN trains on (x, y).

Table 6 and its scorecard rows are at the end.
"""
from __future__ import annotations

import pandas as pd
import torch
import torch.nn.functional as F

from approxeq.algebra.velocity import rotate_grid, rotate_velocity
from approxeq.data.smoke_data import RMSEAccumulator, rollout
from approxeq.experiments.base import ExperimentSetup, model_network
from approxeq.method.comparison import comparison_row, not_run_note, params_m, stats
from approxeq.method.loss import LossWeights, method_loss
from approxeq.method.summary import mean_std, require_finite
from approxeq.method.train import TaskData
from approxeq.nn.encoder_head import EncoderHead
from approxeq.nn.registry import build_model, takes_argument

FRAME_CHANNELS = 2


def smoke_objective(weights: LossWeights, targets_of, horizon: int, augment: bool = False):
    """The method's loss (loss.method_loss) on windows: `targets_of(windows, horizon)` gathers the
    target frames, the one-step prediction is rolled out to `horizon` frames, and the shifted term
    compares F(g·x) with the first rotated target frame (w_shift on that frame only). `augment`:
    the task term on randomly rotated windows (g·x, g·y) instead of (x, y)."""

    def predict(model: EncoderHead, first: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if horizon == 1:
            return first
        window = torch.cat([x[:, FRAME_CHANNELS:], first], 1)
        return torch.cat([first, rollout(model, window, horizon - 1)], 1)

    def objective(model: EncoderHead, x: torch.Tensor, windows: torch.Tensor, g: torch.Tensor):
        y = targets_of(windows, horizon)
        if augment:
            x, y = rotate_velocity(x, g), rotate_velocity(y, g)
        # the ConvNet's latent turns with the grid; a baseline brings its latent's own action
        latent_action = getattr(model, "latent_action", rotate_grid)
        return method_loss(model, x, y, g, weights, F.mse_loss, rotate_velocity, latent_action,
                           rotate_velocity, predict=predict,
                           shift_target=lambda target: target[:, :FRAME_CHANNELS])
    return objective


@torch.no_grad()
def rollout_rmse(model: EncoderHead, windows: torch.Tensor, inputs_of, targets_of, horizon: int,
                 batch_size: int = 16) -> float:
    """RMSE of `horizon`-step rollouts over `windows` (protocols.md: per batch the mean over steps
    of the MSE, averaged over batches, then the square root)."""
    was_training = model.training
    model.eval()
    accumulator = RMSEAccumulator()
    for i in range(0, len(windows), batch_size):
        batch = windows[i:i + batch_size]
        accumulator.update(rollout(model, inputs_of(batch), horizon), targets_of(batch, horizon))
    model.train(was_training)
    return accumulator.value()


def setup(run: dict, device: torch.device) -> ExperimentSetup:
    """run: data (folder of sim_KK.npz), splits (SmokeSplits fields), horizons, network, weights."""
    from pathlib import Path

    from approxeq.data.smoke_data import SmokeSplits, gather_windows, split_windows
    from approxeq.data.smoke_files import load_simulation

    splits = SmokeSplits.from_config(run["splits"])
    paths = sorted(Path(run["data"]).glob("sim_*.npz"))
    loaded = [load_simulation(p) for p in paths]
    ks = [int(meta["k"]) for _, meta in loaded]
    frames = torch.stack([torch.from_numpy(arrays["velocity"]) for arrays, _ in loaded]).to(device)
    index_of_k = {k: i for i, k in enumerate(ks)}
    longest = max(run["horizons"])  # test windows must hold the longest rollout that is reported
    horizons = {"train": splits.train_horizon, "val": splits.train_horizon, "future": longest,
                "domain": longest}
    windows = {name: w.to(device) for name, w in split_windows(splits, frames.shape[1], horizons).items()}

    def inputs_of(batch):
        return gather_windows(frames, index_of_k, batch, splits.frame_offset, splits.input_frames)

    def targets_of(batch, horizon):
        return gather_windows(frames, index_of_k, batch, splits.frame_offset + splits.input_frames, horizon)

    def val_rmse(model, x, y):
        return rollout_rmse(model, y, inputs_of, targets_of, splits.train_horizon)

    network = run["network"]
    # a network that reads the whole frame (the MLP, Lift's MLP) is told the grid's side
    grid = {"grid": frames.shape[-1]} if takes_argument(network["name"], "grid") else {}
    model = build_model(network["name"], **grid, **{k: v for k, v in network.items() if k != "name"}).to(device)
    if getattr(model, "latent_action", rotate_grid) is None and run["weights"].get("equivariance", 0.0) > 0:
        raise ValueError(f"network {network['name']!r} has no latent action: its latent equivariance "
                         "weight must be 0")
    objective = smoke_objective(LossWeights(**run["weights"]), targets_of, splits.train_horizon,
                                augment=run.get("augment", False))
    data = TaskData(x_train=windows["train"], y_train=windows["train"], x_val=windows["val"],
                    y_val=windows["val"], group_order=4, objective=objective, val_metric=val_rmse,
                    prepare=inputs_of, maximize=False)
    # The trainer gathers inputs with `prepare`; targets travel as window indices (y = windows).
    def extra_metrics(trained) -> dict:  # RMSE at every configured test horizon
        return {f"{name}_rmse_h{h}": rollout_rmse(trained, windows[name], inputs_of, targets_of, h)
                for name in ("future", "domain") for h in run["horizons"]}

    return ExperimentSetup(
        model=model, data=data,
        test_sets={name: (windows[name], windows[name]) for name in ("future", "domain")},
        test_metric=val_rmse, metric_name="rmse", synthetic=False,
        input_action=rotate_velocity, output_action=rotate_velocity,
        # the ConvNet's latent is acted on by turning the grid; a baseline brings its own (E2CNN:
        # grid and regular fields, baselines.e2cnn_latent_action), or None where its latent
        # carries no action (the MLP: no latent equivariance is measured)
        latent_action=getattr(model, "latent_action", rotate_grid),
        extra_metrics=extra_metrics)


def simulation_files(config: dict) -> list[str]:
    """One file per simulation k = 1..n_simulations, in the folder SMOKE's runs read."""
    n = config["smoke"]["simulation"]["n_simulations"]
    return [f"{simulation_folder(config)}/sim_{k:02d}.npz" for k in range(1, n + 1)]


def simulation_folder(config: dict) -> str:
    return f"{config['results']}/data/smoke"


def data_files(config: dict, experiment: str, group: str, seed: int) -> tuple[list[str], str]:
    """(the files the workflow makes before a run starts, the file or folder the run reads)."""
    return simulation_files(config), simulation_folder(config)


def network_key(config: dict, model: str) -> tuple[str, str]:
    """(config key, network name) of a model: what the workflow checks is buildable before a job."""
    return f"smoke.models.{model}", model_network(config["smoke"], config["smoke"]["models"][model])["name"]


def run_settings(config: dict, experiment: str, group: str, model: str, seed: int, data: str) -> dict:
    """Everything a SMOKE training job needs."""
    smoke = config["smoke"]
    settings, training = smoke["models"][model], smoke["training"]
    return {
        "experiment": "smoke",
        "group": "C4",
        "model": model,
        "seed": seed,
        "data": data,
        "splits": dict(smoke["splits"]),
        "horizons": list(smoke["horizons"]),
        "network": model_network(smoke, settings),
        "weights": dict(settings["weights"]),
        "augment": settings["augment"],
        "lr": settings.get("lr", training["lr"]),
        "batch_size": training["batch_size"],
        "epochs": training["epochs"],
        "patience": training["patience"],
        "weight_decay": training["weight_decay"],
        "lr_decay": training["lr_decay"],
        "deterministic": config["compute"]["deterministic"],
    }


# --- Table 6 and its scorecard rows -------------------------------------------------------------

def paper_table(runs: pd.DataFrame, paper: pd.DataFrame, labels: dict[str, str], horizons: list[int],
                test_horizon: int) -> pd.DataFrame:
    """Table 6: RMSE on Future and Domain, mean (std) over seeds at each test horizon, beside the
    paper's values (which use the horizon `test_horizon` of the paper's text)."""
    require_finite(runs, [f"{split}_rmse_h{h}" for h in horizons for split in ("future", "domain")]
                   + ["parameters"], "Table 6")
    # a model whose latent carries no group action (the MLP) has no latent equivariance in any run
    # ("–"); every other model must have it in every run
    latent = "latent_equivariance_relative"
    measured = (runs.groupby("model")[latent].transform(lambda c: c.notna().any()) if latent in runs
                else pd.Series(False, index=runs.index))
    require_finite(runs[measured.astype(bool)], [latent], "Table 6")
    rows = []
    trained = set(runs["model"])
    for _, p in paper.iterrows():
        if p["model"] in trained:
            ours = runs[runs["model"] == p["model"]]
            row = {"Model": labels.get(p["model"], p["label"]), "Aug": p["aug"], "Source": "this run",
                   "seeds": len(ours)}
            for h in horizons:
                for split in ("future", "domain"):
                    column = ours[f"{split}_rmse_h{h}"]
                    row[f"{split.capitalize()} (h={h})"] = mean_std(column.mean(), column.std(ddof=1),
                                                                   3, n=len(column))
            row["Par (M)"] = f"{ours['parameters'].iloc[0] / 1e6:.2f}"
            row["latent equivariance (rel.)"] = (f"{ours[latent].mean():.3f}" if latent in ours
                                                 and ours[latent].notna().all() else "–")
            rows.append(row)
        source = "paper" if p["model"] in trained else "paper (imported)"
        row = {"Model": p["label"], "Aug": p["aug"], "Source": source, "seeds": 5}
        for h in horizons:
            for split in ("future", "domain"):
                row[f"{split.capitalize()} (h={h})"] = (mean_std(p[f"{split}_mean"], p[f"{split}_std"], 2)
                                                        if h == test_horizon else "–")
        row["Par (M)"] = f"{p['params_m']:.2f}"
        row["latent equivariance (rel.)"] = "–"
        rows.append(row)
    return pd.DataFrame(rows)


def scorecard_rows(runs: pd.DataFrame | None, paper: pd.DataFrame, test_horizon: int,
               not_trained: dict[str, str] | None = None) -> list[dict]:
    """Table 6: RMSE on Future and Domain at the paper's test horizon, per model."""
    keys = [f"{split}_rmse_h{test_horizon}" for split in ("future", "domain")]
    if runs is not None and len(runs):
        require_finite(runs, keys, "the scorecard (Table 6)")
    rows = []
    for _, p in paper.iterrows():
        label = p["label"] + (" aug." if p["aug"] == "Yes" and p["model"] != "ours" else "")
        ours = None if runs is None else runs[runs["model"] == p["model"]]
        found = ours is not None and len(ours) > 0
        for split in ("future", "domain"):
            rows.append(comparison_row(6, "SMOKE", f"test RMSE (h = {test_horizon})", p["model"], label,
                                       split.capitalize(), (p[f"{split}_mean"], p[f"{split}_std"], 5),
                                       stats(ours[f"{split}_rmse_h{test_horizon}"]) if found else None,
                                       found and bool("synthetic" in ours and ours["synthetic"].any()),
                                       not_run_note(p["model"], found, not_trained),
                                       (p["params_m"], params_m(ours if found else None))))
    return rows
