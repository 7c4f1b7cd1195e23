"""Matplotlib figures of the report. Each function writes one PNG; titles carry the QUICK RUN and
SYNTHETIC DATA labels when they apply."""
from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from approxeq.runtime.io import atomic_path  # noqa: E402


# how the figures name the Section 4 experiments (their config keys are not for readers)
EXPERIMENT_TITLES = {"tmnist": "TMNIST autoencoder", "mnist_d3": "MNIST autoencoder", "cifar10": "CIFAR10 classifier"}


def experiment_title(name: str) -> str:
    return EXPERIMENT_TITLES.get(name, name)


def label_suffix(quick: bool, synthetic: bool) -> str:
    tags = (["QUICK RUN"] if quick else []) + (["SYNTHETIC DATA"] if synthetic else [])
    return f" [{', '.join(tags)}]" if tags else ""


def save(fig, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)


def ddmnist_examples(datasets: dict[str, tuple[dict, dict]], path: str | Path, quick: bool,
                     n: int = 4) -> None:
    """Per group: test images, their untransformed digits, and g·x for a random g of G×G."""
    from approxeq.data.ddmnist import Canvas, pair_action, product_group

    fig, axes = plt.subplots(len(datasets) * 3, n, figsize=(2.4 * n, 4.2 * len(datasets)), squeeze=False)
    synthetic = False
    for row, (group, (splits, meta)) in enumerate(datasets.items()):
        synthetic |= bool(meta.get("synthetic"))
        picks = np.linspace(0, len(splits["test"]["labels"]) - 1, n).astype(int)  # spread over classes
        test = {key: value[picks] for key, value in splits["test"].items()}
        x = torch.from_numpy(test["images"]).unsqueeze(1)
        product = product_group(group)
        g = torch.randint(product.order, (n,), generator=torch.Generator().manual_seed(0))
        gx = pair_action(group, Canvas(**meta["canvas"]))(x, g)
        panels = [("clean", test["clean"]), ("x (test)", x[:, 0].numpy()), ("g·x", gx[:, 0].numpy())]
        for k, (name, images) in enumerate(panels):
            for i in range(n):
                ax = axes[3 * row + k, i]
                ax.imshow(images[i], cmap="gray", vmin=0, vmax=255)
                ax.set_xticks([]), ax.set_yticks([])
                title = f"{group} {name}" + (f" label {test['labels'][i]}" if k == 0 else "")
                if k == 2:
                    title += f" g={product.elements[int(g[i])]}"
                ax.set_title(title, fontsize=8)
    fig.suptitle("Figure 6: DDMNIST examples" + label_suffix(quick, synthetic))
    fig.tight_layout()
    save(fig, path)


def training_curves(histories: dict[tuple[str, str, int], Path], labels: dict[str, str],
                    path: str | Path, quick: bool, synthetic: bool, metric: str = "validation accuracy") -> None:
    """Validation metric per epoch, one panel per group, one colour per model, one line style per
    seed (both in the legend), whole epochs on the x axis."""
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    groups = sorted({key[0] for key in histories})
    fig, axes = plt.subplots(1, len(groups), figsize=(4.2 * len(groups), 3.4), squeeze=False)
    colours = dict(zip(labels, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    seeds = sorted({key[2] for key in histories})
    styles = dict(zip(seeds, ["-", "--", ":", "-.", (0, (5, 1, 1, 1, 1, 1))] * (len(seeds) // 5 + 1)))
    for (group, model, seed), history_path in sorted(histories.items()):
        records = [json.loads(line) for line in Path(history_path).read_text().splitlines() if line]
        ax = axes[0, groups.index(group)]
        ax.plot([r["epoch"] for r in records], [r["val_metric"] for r in records],
                color=colours.get(model), linestyle=styles[seed], alpha=0.85, marker="." if len(records) < 8 else None)
        ax.set_title(group), ax.set_xlabel("epoch"), ax.set_ylabel(metric)
    handles = [Line2D([], [], color=colours.get(m), label=labels.get(m, m))
               for m in dict.fromkeys(key[1] for key in sorted(histories))]
    handles += [Line2D([], [], color="0.3", linestyle=styles[s], label=f"seed {s}") for s in seeds]
    for ax in axes[0]:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    axes[0, -1].legend(handles=handles, fontsize=9, loc="center left", bbox_to_anchor=(1.02, 0.5))
    fig.suptitle(f"DDMNIST {metric} during training" + label_suffix(quick, synthetic))
    fig.tight_layout()
    save(fig, path)


def eigenvalue_trajectories(histories: dict[str, tuple[Path, str]], path: str | Path, quick: bool,
                            synthetic: bool) -> None:
    """Figure 4: eigenvalues of a learned generator matrix on the complex plane, one point per
    eigenvalue per epoch, coloured by epoch, with the unit circle and the n-th roots of unity.
    `synthetic` is not shown for the whole figure: each panel's title says whether its data were."""
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(1, len(histories), figsize=(4.3 * len(histories), 4.3), squeeze=False)
    circle = np.exp(1j * np.linspace(0, 2 * np.pi, 400))
    for ax, (title, (history_path, group)) in zip(axes[0], histories.items()):
        records = [json.loads(line) for line in Path(history_path).read_text().splitlines() if line]
        epochs = np.concatenate([[r["epoch"]] * len(r["eig_real"]) for r in records])
        real = np.concatenate([r["eig_real"] for r in records])
        imag = np.concatenate([r["eig_imag"] for r in records])
        ax.plot(circle.real, circle.imag, color="0.7", lw=1)
        order = {"C": int(group[1:]), "D": 3 if group == "D3" else int(group[1:])}.get(group[0], 1)
        roots = np.exp(2j * np.pi * np.arange(order) / order)
        # open circles under the points: converged eigenvalues (the last epochs) stay visible
        ax.scatter(roots.real, roots.imag, marker="o", facecolors="none", edgecolors="k", s=140, lw=1.2,
                   zorder=2, label=f"roots of unity of order {order}")
        points = ax.scatter(real, imag, c=epochs, cmap="viridis", s=10, alpha=0.8, zorder=3)
        ax.set_aspect("equal"), ax.set_xlim(-1.6, 1.6), ax.set_ylim(-1.6, 1.6)
        ax.set_xlabel("Re λ"), ax.set_ylabel("Im λ")
        ax.set_title(title, fontsize=11), ax.legend(fontsize=9, loc="lower left")
        bar = fig.colorbar(points, ax=ax, fraction=0.046, label="epoch")
        bar.locator = MaxNLocator(integer=True)
        bar.update_ticks()
    # SYNTHETIC DATA is marked per panel (in its title), only where that panel's data were synthetic.
    fig.suptitle("Figure 4: eigenvalues of the learned generator during training" + label_suffix(quick, False))
    fig.tight_layout()
    save(fig, path)


def image_grid(rows: list[tuple[str, np.ndarray]], path: str | Path, title: str,
               column_titles: list[str] | None = None) -> None:
    """Rows of grey images (each row: label, array N×H×W in [0, 1] or uint8)."""
    n = max(len(images) for _, images in rows)
    fig, axes = plt.subplots(len(rows), n, figsize=(1.25 * n, 1.35 * len(rows)), squeeze=False)
    for r, (label, images) in enumerate(rows):
        for c in range(n):
            ax = axes[r, c]
            ax.set_xticks([]), ax.set_yticks([])
            if c < len(images):
                image = images[c]
                ax.imshow(image, cmap="gray", vmin=0, vmax=255 if image.dtype == np.uint8 else 1)
            if c == 0:
                ax.set_ylabel(label, fontsize=9, rotation=0, ha="right", va="center")
            if r == 0 and column_titles:
                ax.set_title(column_titles[c], fontsize=9)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    save(fig, path)


def quiver(ax, field: np.ndarray, step: int, title: str, top_speed: float):
    """Velocity field (2, H, W), components (x, y), row 0 at the bottom (y up), over its speed.
    Arrows share one scale per figure: the fastest (`top_speed`) is 0.9 of the arrow spacing, so
    none reaches past its neighbours or the panel's edge."""
    h, w = field.shape[1:]
    ys, xs = np.mgrid[0:h:step, 0:w:step]
    image = ax.imshow(np.hypot(field[0], field[1]), origin="lower", cmap="magma", vmin=0, vmax=top_speed)
    arrows = ax.quiver(xs, ys, field[0, ::step, ::step], field[1, ::step, ::step], color="cyan",
                       angles="xy", scale_units="xy", scale=max(top_speed, 1e-12) / (0.9 * step), width=0.006)
    arrows.set_clip_on(True)
    ax.set_xlim(-0.5, w - 0.5), ax.set_ylim(-0.5, h - 0.5)
    ax.set_title(title, fontsize=9)
    ax.set_xticks([]), ax.set_yticks([])
    return image


def top_speed(*fields: np.ndarray) -> float:
    return float(max(np.hypot(f[0], f[1]).max() for f in fields))


def smoke_frames(density: np.ndarray, velocity: np.ndarray, frames: list[int], path: str | Path,
                 title: str) -> None:
    """Figure 2: smoke density (top) and velocity (bottom) of one plume at a few frames."""
    fig, axes = plt.subplots(2, len(frames), figsize=(2.6 * len(frames) + 1.0, 6.0), squeeze=False)
    step = max(1, velocity.shape[-1] // 16)
    speed = top_speed(*(velocity[f] for f in frames))
    top = float(max(density[f].max() for f in frames))
    for c, f in enumerate(frames):
        shown = axes[0, c].imshow(density[f], origin="lower", cmap="gray", vmin=0, vmax=max(top, 1e-12))
        axes[0, c].set_title(f"density, frame {f}", fontsize=9)
        axes[0, c].set_xticks([]), axes[0, c].set_yticks([])
        speed_image = quiver(axes[1, c], velocity[f], step, f"velocity, frame {f}", speed)
    fig.colorbar(shown, ax=list(axes[0]), fraction=0.02, pad=0.01, label="smoke density")
    fig.colorbar(speed_image, ax=list(axes[1]), fraction=0.02, pad=0.01, label="speed |v| (cells per unit time)")
    fig.suptitle(title, fontsize=11)
    save(fig, path)


def velocity_rotation(field: np.ndarray, grid_only: np.ndarray, rotated: np.ndarray,
                      path: str | Path, title: str) -> None:
    """Figure 7: a velocity field, its grid rotated by 90° with the vectors left as they were, and
    the correct action: grid rotated and every vector reoriented by the same angle."""
    fig, axes = plt.subplots(1, 3, figsize=(11.5, 3.9))
    step = max(1, field.shape[-1] // 16)
    speed = top_speed(field, grid_only, rotated)
    quiver(axes[0], field, step, "v", speed)
    quiver(axes[1], grid_only, step, "grid rotated 90°, vectors not (wrong)", speed)
    image = quiver(axes[2], rotated, step, "g·v: grid and vectors rotated 90°", speed)
    fig.colorbar(image, ax=list(axes), fraction=0.015, pad=0.01, label="speed |v|")
    fig.suptitle(title, fontsize=11)
    save(fig, path)


SIDE_3D = 28


def mid_slices(volume: np.ndarray) -> np.ndarray:
    """The three orthogonal mid-slices of an (X, Y, Z) volume side by side (x, y, z fixed in turn),
    separated by a one-voxel white line."""
    x, y, z = (s // 2 for s in volume.shape)
    slices = [volume[x], volume[:, y], volume[:, :, z]]
    gap = np.full((volume.shape[1], 1), volume.max(), dtype=volume.dtype)
    return np.concatenate([slices[0], gap, slices[1], gap, slices[2]], axis=1)


def volume_rotations(samples: list[tuple[str, np.ndarray, bool]], elements: list[tuple[str, np.ndarray]],
                     path: str | Path, quick: bool) -> None:
    """Rows: one volume per data set (label, volume, synthetic); columns: g·v for the given group
    elements (title, rotated volumes, one per row). Each cell shows the x, y and z mid-slices."""
    n_rows, n_cols = len(samples), len(elements)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(3.2 * n_cols + 1.6, 1.2 * n_rows + 1.0),
                             squeeze=False)
    for row, (label, _, synthetic) in enumerate(samples):
        for col, (title, rotated) in enumerate(elements):
            ax = axes[row, col]
            ax.imshow(mid_slices(rotated[row]), cmap="gray", vmin=0, vmax=255)
            ax.set_xticks([(SIDE_3D - 1) / 2 + k * (SIDE_3D + 1) for k in range(3)], ["x", "y", "z"],
                          fontsize=9)
            ax.tick_params(length=0, pad=1)
            ax.set_yticks([])
            if row == 0:
                ax.set_title(title, fontsize=9)
            if col == 0:
                ax.set_ylabel(label.replace(": ", "\n") + ("\nSYNTHETIC" if synthetic else ""),
                              fontsize=10, rotation=0, ha="right", va="center",
                              color="firebrick" if synthetic else "black")
    fig.suptitle("MedMNIST3D test volumes v and g·v for elements g of O; each cell: the mid-slices "
                 "across x, y and z" + label_suffix(quick, False), fontsize=10)
    fig.tight_layout()
    save(fig, path)
