# Training and evaluation, one job per (experiment, group, model, seed). A training job asks for
# one GPU (`resources: gpu=1`); the job itself picks a free device (approxeq.devices).


rule train:
    input:
        data=dataset_for,
    output:
        model=RUN_DIR + "/model.pt",
        info=RUN_DIR + "/train.json",
        history=RUN_DIR + "/history.jsonl",
    params:
        run=run_settings,
        lock_dir=config["compute"]["gpu_lock_dir"],
    threads: config["compute"]["train_threads"]
    resources:
        gpu=1,
    log:
        LOGS + "/train/{experiment}/{group}/{model}/seed{seed}.log",
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/train.py"


rule evaluate:
    input:
        model=rules.train.output.model,
        info=rules.train.output.info,
        data=dataset_for,
    output:
        RUN_DIR + "/metrics.json",
    threads: 1
    log:
        LOGS + "/evaluate/{experiment}/{group}/{model}/seed{seed}.log",
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/evaluate.py"
