"""Snakemake `script:` entry point: train one (experiment, group, model, seed) run and evaluate it.

The run folder is locked first (a second trainer in the same folder, e.g. next to an orphan of
a killed Snakemake, stops with an error naming the holder). Then the device is chosen before CUDA
initialises: a free GPU under a per-device lock (or the one SLURM assigned), else the CPU.
A finished checkpoint of the same config is reused as it is, so rerunning a job whose training
had completed (`--rerun-incomplete` after a killed Snakemake) does not train again.

Evaluation runs here, on the best state still in memory and the test sets already on the device:
a separate job would pay the process start, the imports and the data load a second time (in the
quick run that was a third of all job time), while one job per run is kept for GPU placement
and cluster submission.
"""
import json
import time
from pathlib import Path

from approxeq.runtime.allocator import keep_freed_memory
from approxeq.runtime.devices import acquire_device, default_lock_dir, torch_device
from approxeq.runtime.io import run_folder_lock
from approxeq.runtime.logs import redirect_to_log


def main(run: dict, threads: int, lock_dir, output: dict, log_path: str,
         divergence_factor=1000.0, gpu_wait_seconds=None, data_files=(), compute=None):
    """`compute`: the configuration's compute section (jobs_per_gpu, keep_freed_memory,
    channels_last, compile, compile_min_images; approxeq.runtime.speed); None: the defaults."""
    compute = dict(compute or {})
    run_dir = Path(output["model"]).parent
    with redirect_to_log(log_path), run_folder_lock(run_dir):
        # before the first tensor: the process then reuses its freed memory (the same digits)
        keep_memory = compute.get("keep_freed_memory", True)
        memory = keep_freed_memory(keep_memory)
        lease = acquire_device(lock_dir or default_lock_dir(), timeout_seconds=gpu_wait_seconds,
                               jobs_per_gpu=compute.get("jobs_per_gpu", 1))
        started_at = time.time()
        import torch

        from approxeq.experiments import evaluate_experiment, setup_experiment
        from approxeq.method.train import (
            TrainConfig,
            save_atomic,
            seed_everything,
            set_determinism,
            train,
        )
        from approxeq.runtime.identity import code_fingerprint, input_hashes
        from approxeq.runtime.io import write_json_atomic
        from approxeq.runtime.speed import resolve_speed

        device = torch_device(lease)
        torch.set_num_threads(threads)
        set_determinism(run["deterministic"])
        print(f"run {json.dumps(run, sort_keys=True)}\ndevice {lease.describe()}, {threads} threads")
        seed_everything(run["seed"])
        setup = setup_experiment(run, device)
        per_epoch = len(setup.data.x_train) // run["batch_size"] * run["batch_size"]
        speed = resolve_speed(compute, run.get("network", {}).get("name"), device.type,
                              run["epochs"] * per_epoch, threads=threads)
        print(f"speed: {speed.why}\nmemory: {memory}")
        # A checkpoint belongs to its settings, the content of its input files and the code that
        # trained it (computed after setup: the modules that build this run are loaded by then).
        inputs = {"data": input_hashes(data_files), "code": code_fingerprint(), "torch": str(torch.__version__)}
        cfg = TrainConfig(lr=run["lr"], batch_size=run["batch_size"], epochs=run["epochs"],
                          patience=run["patience"], seed=run["seed"],
                          weight_decay=run["weight_decay"], lr_decay=run.get("lr_decay", 1.0),
                          settings=run, divergence_factor=divergence_factor, inputs=inputs,
                          **speed.settings())
        # Resumes an unfinished checkpoint of the same identity, reuses a finished one, and sets
        # a checkpoint of other settings, data or code aside and starts over.
        result = train(setup.model, setup.data, cfg, run_dir,
                       log=lambda message: print(message, flush=True), stale_checkpoint="restart")
        finished_at = time.time()
        save_atomic(result.best_state, output["model"])
        setup.model.load_state_dict(result.best_state)
        metrics = evaluate_experiment(setup, run)
        # The device is held until here: [started_at, evaluated_at] is the job's time on it.
        info = {"best_epoch": result.best_epoch, "best_val_metric": result.best_metric,
                "epochs_run": len(result.history), "train_seconds": result.wall_seconds,
                "device": lease.describe(), "device_type": device.type, "threads": threads,
                **speed.settings(), "keep_freed_memory": keep_memory,
                "started_at": started_at, "finished_at": finished_at, "evaluated_at": time.time(),
                "synthetic": setup.synthetic, "divergence_factor": divergence_factor,
                "torch": torch.__version__, "data_sha256": inputs["data"],
                "code_fingerprint": inputs["code"], "run": run}
        if device.type == "cuda":
            # the peak of this process's tensors on its GPU (training and evaluation), so a user
            # can choose compute.jobs_per_gpu (runs sharing one GPU must fit in its memory together)
            info["cuda_max_memory_mb"] = torch.cuda.max_memory_allocated() / 2**20
            print(f"peak CUDA memory allocated: {info['cuda_max_memory_mb']:.0f} MiB "
                  f"(torch.cuda.max_memory_allocated)")
        metrics.update({key: info[key] for key in ("train_seconds", "device", "best_epoch", "epochs_run",
                                                   "data_sha256", "code_fingerprint",
                                                   "channels_last", "compile", "cuda_max_memory_mb")
                        if key in info})
        print(f"test metrics {json.dumps(metrics, sort_keys=True)}")
        write_json_atomic(output["info"], info)
        write_json_atomic(output["metrics"], metrics)
        lease.release()


if "snakemake" in globals():
    p = snakemake.params  # noqa: F821
    main(dict(p.run), snakemake.threads, p.lock_dir, dict(snakemake.output),  # noqa: F821
         snakemake.log[0], p.divergence_factor, p.gpu_wait_seconds, snakemake.input.data,  # noqa: F821
         dict(p.compute))
