"""Snakemake `script:` entry point: the scorecard (every reproduced number of the paper's Tables
1-6: paper, ours, Δ, Δ/σ, verdict) as CSV."""
import pandas as pd

from approxeq.experiments import EXPLORATORY_TABLES, ddmnist, exploratory, medmnist, smoke
from approxeq.method.summary import collect_metrics
from approxeq.report.scorecard import counts, verdicts
from approxeq.runtime.io import write_text_atomic
from approxeq.runtime.logs import redirect_to_log


def main(inputs, flags, test_horizon, not_trained, quick, output, log_path):
    """`not_trained`: table number → {model: reason} (the configuration's `not_trained` keys)."""
    with redirect_to_log(log_path):
        rows = []
        # every experiment's own rows (its module's scorecard_rows)
        for module in EXPLORATORY_TABLES.values():
            number = module.PAPER_TABLE.number
            rows += exploratory.scorecard_rows(module.PAPER_TABLE, pd.read_csv(inputs[f"table{number}"]),
                                               pd.read_csv(inputs[f"paper{number}"]))
        rows += ddmnist.scorecard_rows(pd.read_csv(inputs["ddmnist_runs"]), pd.read_csv(inputs["paper4"]),
                                       not_trained[4])
        rows += medmnist.scorecard_rows(collect_metrics(inputs["medmnist"]), pd.read_csv(inputs["paper5"]), flags,
                                        not_trained[5])
        rows += smoke.scorecard_rows(collect_metrics(inputs["smoke"]), pd.read_csv(inputs["paper6"]),
                                     test_horizon, not_trained[6])
        scorecard = verdicts(rows, quick)
        write_text_atomic(output, scorecard.to_csv(index=False))
        print(counts(scorecard))
        print(scorecard.to_string())


if "snakemake" in globals():
    p = snakemake.params  # noqa: F821
    main(dict(snakemake.input), dict(p.flags), p.test_horizon, {int(k): dict(v) for k, v in p.not_trained.items()},  # noqa: F821
         p.quick, snakemake.output[0],  # noqa: F821
         snakemake.log[0])  # noqa: F821
