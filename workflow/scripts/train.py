"""Snakemake `script:` entry point: train one (experiment, group, model, seed) run.

The device is chosen before CUDA initialises: a free GPU under a per-device lock (or the one
SLURM assigned), else the CPU.
"""
import json
import time
from pathlib import Path

from approxeq.devices import acquire_device, default_lock_dir, torch_device
from approxeq.logs import redirect_to_log


def main(run: dict, threads: int, lock_dir, output: dict, log_path: str):
    with redirect_to_log(log_path):
        lease = acquire_device(lock_dir or default_lock_dir())
        started_at = time.time()
        import torch

        from approxeq.experiments import setup_experiment
        from approxeq.io import write_json_atomic
        from approxeq.train import TrainConfig, discard_finished_checkpoint, seed_everything, train

        device = torch_device(lease)
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(run["deterministic"], warn_only=True)
        print(f"run {json.dumps(run, sort_keys=True)}\ndevice {lease.describe()}, {threads} threads")
        seed_everything(run["seed"])
        setup = setup_experiment(run, device)
        cfg = TrainConfig(lr=run["lr"], batch_size=run["batch_size"], epochs=run["epochs"],
                          patience=run["patience"], seed=run["seed"],
                          weight_decay=run["weight_decay"], lr_decay=run.get("lr_decay", 1.0),
                          settings=run)
        # Resume only an unfinished checkpoint of the same config; otherwise train from scratch.
        discard_finished_checkpoint(Path(output["model"]).parent, cfg.epochs)
        result = train(setup.model, setup.data, cfg, Path(output["model"]).parent,
                       log=lambda message: print(message, flush=True), stale_checkpoint="restart")
        torch.save(result.best_state, output["model"])
        write_json_atomic(output["info"], {
            "best_epoch": result.best_epoch, "best_val_metric": result.best_metric,
            "epochs_run": len(result.history), "train_seconds": result.wall_seconds,
            "device": lease.describe(), "device_type": device.type,
            "started_at": started_at, "finished_at": time.time(), "synthetic": setup.synthetic,
            "torch": torch.__version__, "run": run})
        lease.release()


if "snakemake" in globals():
    main(dict(snakemake.params.run), snakemake.threads,  # noqa: F821
         snakemake.params.lock_dir, dict(snakemake.output), snakemake.log[0])  # noqa: F821
