# Training and evaluation, one job per (experiment, group, model, seed): the job trains, then
# evaluates the best state on the test sets into metrics.json. It asks for one GPU slot
# (`resources: gpu=1`; with compute.jobs_per_gpu = n, `--resources gpu=N` counts slots, n per GPU);
# the job itself picks a free device or slot (approxeq.runtime.devices).


rule train:
    input:
        data=dataset_for,
    output:
        model=f"{RUN_DIR}/model.pt",
        info=f"{RUN_DIR}/train.json",
        history=f"{RUN_DIR}/history.jsonl",
        metrics=f"{RUN_DIR}/metrics.json",
    params:
        run=run_settings,
        lock_dir=config["compute"]["gpu_lock_dir"],
        # Not in `run`: neither changes what a run computes, so neither enters its fingerprint.
        divergence_factor=config["compute"]["divergence_factor"],
        gpu_wait_seconds=config["compute"]["gpu_wait_seconds"],
        # jobs_per_gpu (slot locks), keep_freed_memory (malloc), channels_last, compile,
        # compile_min_images: how the job runs; the channels-last and compile settings it resolves
        # enter its checkpoint's identity (keep_freed_memory does not change the digits)
        compute={key: config["compute"][key]
                 for key in ("jobs_per_gpu", "keep_freed_memory", "channels_last", "compile",
                             "compile_min_images")},
    threads: config["compute"]["train_threads"]
    resources:
        gpu=1,
    log:
        f"{LOGS}/train/{{experiment}}/{{group}}/{{model}}/seed{{seed}}.log",
    benchmark:
        f"{BENCHMARKS}/train/{{experiment}}/{{group}}/{{model}}/seed{{seed}}.tsv",
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/train.py"

