"""Snakemake `script:` entry point: evaluate one trained run into metrics.json."""
import torch

from approxeq.evaluate import latent_equivariance_error
from approxeq.experiments import setup_experiment
from approxeq.io import read_json, write_json_atomic
from approxeq.logs import redirect_to_log
from approxeq.models import count_parameters


def main(model_path, info_path, output, threads, log_path):
    with redirect_to_log(log_path):
        torch.set_num_threads(threads)
        info = read_json(info_path)
        run = info["run"]
        setup = setup_experiment(run, torch.device("cpu"))
        model = setup.model
        model.load_state_dict(torch.load(model_path, map_location="cpu", weights_only=True))
        model.eval()
        data = setup.data
        metrics = {f"{name}_{setup.metric_name}": setup.test_metric(model, x, y)
                   for name, (x, y) in setup.test_sets.items()}
        first_test_set = next(iter(setup.test_sets.values()))[0]
        if setup.latent_action is not None:  # None: a latent without a group action (SMOKE MLP)
            metrics.update(latent_equivariance_error(
                model, first_test_set, data.group_order, setup.input_action,
                setup.latent_action, data.prepare, seed=run["seed"]))
        if setup.extra_metrics is not None:
            metrics.update(setup.extra_metrics(model))
        metrics.update({
            "experiment": run["experiment"], "group": run["group"], "model": run["model"],
            "seed": run["seed"], "parameters": count_parameters(model),
            "train_seconds": info["train_seconds"], "device": info["device"],
            "best_epoch": info["best_epoch"], "epochs_run": info["epochs_run"],
            "synthetic": setup.synthetic, "lr": run["lr"],
            "lambda": run["weights"].get("equivariance", 0.0)})
        print(metrics)
        write_json_atomic(output, metrics)


if "snakemake" in globals():
    main(snakemake.input.model, snakemake.input.info, snakemake.output[0],  # noqa: F821
         snakemake.threads, snakemake.log[0])  # noqa: F821
