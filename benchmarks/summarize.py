"""Where a workflow run's time goes: Snakemake's per-job `benchmark:` records summed per rule.

    python benchmarks/summarize.py results/quick/benchmarks [--wall SECONDS] [--markdown]

Every rule writes `<results>/benchmarks/<rule>[/<wildcards>].tsv` (wall seconds `s`, `cpu_time`,
peak resident memory `max_rss` in MB). This prints one row per rule: jobs, summed and mean wall
seconds, summed CPU seconds, the largest peak memory, and each rule's share of all job-seconds.
With --wall (the run's measured wall-clock time) it also prints job-seconds ÷ wall, the mean number
of jobs running at once.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd


def read_benchmarks(folder: Path) -> pd.DataFrame:
    """One row per job record: rule (the first path component), job (the rest) and its figures."""
    rows = []
    for path in sorted(folder.rglob("*.tsv")):
        relative = path.relative_to(folder).with_suffix("")
        record = pd.read_csv(path, sep="\t")
        if record.empty:
            raise ValueError(f"{path}: an empty benchmark record")
        last = record.iloc[-1]  # `repeat()` writes several lines; the last run is the one kept
        rows.append({"rule": relative.parts[0], "job": "/".join(relative.parts[1:]),
                     "wall_s": float(last["s"]), "cpu_s": float(last["cpu_time"]),
                     "max_rss_mb": float(last["max_rss"])})
    if not rows:
        raise FileNotFoundError(f"no benchmark records (*.tsv) under {folder}")
    return pd.DataFrame(rows)


def per_rule(jobs: pd.DataFrame) -> pd.DataFrame:
    table = jobs.groupby("rule").agg(jobs=("job", "size"), wall_s=("wall_s", "sum"),
                                     mean_wall_s=("wall_s", "mean"), cpu_s=("cpu_s", "sum"),
                                     max_rss_mb=("max_rss_mb", "max"))
    table["share"] = table["wall_s"] / table["wall_s"].sum()
    table = table.sort_values("wall_s", ascending=False)
    total = pd.DataFrame([{"jobs": table["jobs"].sum(), "wall_s": table["wall_s"].sum(),
                           "mean_wall_s": jobs["wall_s"].mean(), "cpu_s": table["cpu_s"].sum(),
                           "max_rss_mb": table["max_rss_mb"].max(), "share": 1.0}], index=["total"])
    return pd.concat([table, total])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="a run's benchmarks folder (<results>/benchmarks)")
    parser.add_argument("--wall", type=float, help="the run's wall-clock seconds (prints the parallelism)")
    parser.add_argument("--markdown", action="store_true", help="a Markdown table (benchmarks/README.md)")
    args = parser.parse_args(argv)
    table = per_rule(read_benchmarks(args.folder))
    shown = table.assign(share=(100 * table["share"]).round(1)).round(
        {"wall_s": 1, "mean_wall_s": 1, "cpu_s": 1, "max_rss_mb": 0})
    shown = shown.rename(columns={"wall_s": "job-seconds", "mean_wall_s": "s per job", "cpu_s": "CPU s",
                                  "max_rss_mb": "peak RSS (MB)", "share": "share (%)"})
    print(shown.to_markdown() if args.markdown else shown.to_string())
    if args.wall:
        busy = table.loc["total", "wall_s"]
        print(f"\n{busy:.0f} job-seconds in {args.wall:.0f} s of wall clock: "
              f"{busy / args.wall:.2f} jobs running on average")
    return 0


if __name__ == "__main__":
    sys.exit(main())
