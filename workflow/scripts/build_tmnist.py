"""Snakemake `script:` entry point: render the 20 base glyphs from the fetched fonts and build the
augmented TMNIST splits (approxeq.data.tmnist)."""
from pathlib import Path

from approxeq.data.fonts import fonts_are_synthetic, load_fonts
from approxeq.data.tmnist import base_glyphs, build_tmnist, save_tmnist, synthetic_glyphs
from approxeq.runtime.io import read_json
from approxeq.runtime.logs import redirect_to_log


def main(fonts_record, sizes, angle_range, scale_range, seed, output, log_path):
    with redirect_to_log(log_path):
        log = lambda message: print(message, flush=True)  # noqa: E731
        font_dir = Path(fonts_record).parent
        synthetic = fonts_are_synthetic(font_dir)
        # load_fonts re-hashes every font file; without fonts (offline quick run) a stand-in
        glyphs = synthetic_glyphs() if synthetic else base_glyphs(load_fonts(font_dir))
        splits, meta = build_tmnist(glyphs, {k: int(v) for k, v in sizes.items()},
                                    angle_range=angle_range, scale_range=scale_range, seed=seed,
                                    log=log)
        meta["synthetic"] = synthetic
        meta["font_files"] = [{k: f[k] for k in ("name", "package", "file", "file_sha256")}
                              for f in read_json(fonts_record)["fonts"]]
        meta = save_tmnist(output, splits, meta)
        log(f"TMNIST: {meta['sizes']}, angles {meta['angle_range']}, scales {meta['scale_range']}, "
            f"glyphs sha256 {meta['glyphs_sha256']} (pinned match: {meta['glyphs_match']}), "
            f"sha256 {meta['sha256']}")


if "snakemake" in globals():
    p = snakemake.params  # noqa: F821
    main(snakemake.input.record, dict(p.sizes), list(p.angle_range),  # noqa: F821
         list(p.scale_range), int(p.seed), snakemake.output.data, snakemake.log[0])  # noqa: F821
