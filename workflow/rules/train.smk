# Training and evaluation, one job per (experiment, group, model, seed): the job trains, then
# evaluates the best state on the test sets into metrics.json. It asks for one GPU
# (`resources: gpu=1`); the job itself picks a free device (approxeq.runtime.devices).


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

