"""How a training job computes its steps: channels-last memory format and torch.compile, resolved
from the configuration's `compute.channels_last` and `compute.compile` (each auto, true or false).

Both compute the same function in another floating-point order, so each setting has its own last
digits: the resolved values are part of the run's identity (approxeq.method.train.TrainConfig),
and a run is resumed only under the setting that wrote its checkpoint.

`auto` turns a speed-up on only where it was measured to pay (benchmarks/throughput.py, figures in
benchmarks/README.md), and only for the DDMNIST CNN on the CPU: compilation for a run long enough
to earn back its compile time (at least `compile_min_images` training images planned, epochs ×
images per epoch), so never in the quick run; channels-last when the run is compiled or has one
thread. Eager channels-last at 2+ threads loses: PyTorch's channels-last BatchNorm kernels run
2-5× slower with a second thread on 6-12 channels, so eager NCHW is faster there (×1.3-1.5).
Nothing here imports torch.
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass

# The networks on which `auto` turns each speed-up on: those benchmarked to gain on the CPU.
CHANNELS_LAST_NETWORKS = ("ddmnist_cnn",)
COMPILE_NETWORKS = ("ddmnist_cnn",)
# Planned training images from which `compile: auto` compiles (compute.compile_min_images default):
# at about 2 minutes of compilation on one loaded CPU core and ≈ 0.5–1 ms saved per image
# (benchmarks/README.md), compiling pays after a few hundred thousand images.
COMPILE_MIN_IMAGES = 500_000


@dataclass(frozen=True)
class Speed:
    channels_last: bool
    compile: bool
    why: str  # one line for the job's log

    def settings(self) -> dict:
        return {"channels_last": self.channels_last, "compile": self.compile}


def cpp_compiler_available() -> bool:
    """Whether torch.compile's CPU backend can build its kernels (it needs a C++ compiler)."""
    return any(shutil.which(name) for name in (os.environ.get("CXX") or "", "g++", "c++", "clang++")
               if name)


def resolve_speed(compute: dict, network: str | None, device_type: str, planned_images: int,
                  compiler: bool | None = None, threads: int = 1) -> Speed:
    """The channels-last and compile settings of one run.

    `compute`: the configuration's compute section; `network`: the run's network name (None when
    the experiment names none); `device_type`: "cpu" or "cuda"; `planned_images`: epochs × the
    training images of one epoch; `compiler`: whether a C++ compiler is there (None: look);
    `threads`: the job's CPU threads."""
    reasons = []

    def choose(key: str, networks: tuple[str, ...], long_enough: bool = True, why_not: str = "") -> bool:
        setting = compute.get(key, "auto")
        if setting in (True, False):
            reasons.append(f"{key} {setting} (configured)")
            return setting
        if setting != "auto":
            raise ValueError(f"compute.{key} must be auto, true or false, not {setting!r}")
        measured = network in networks and device_type == "cpu"
        on = measured and long_enough
        where = ("" if measured else
                 f": only for {', '.join(networks)} on the CPU, not {network or 'this network'} on {device_type}")
        if measured and not long_enough:
            where = f": {why_not}"
        reasons.append(f"{key} {on} (auto{where})")
        return on

    long_enough = planned_images >= compute.get("compile_min_images", COMPILE_MIN_IMAGES)
    compiled = choose("compile", COMPILE_NETWORKS, long_enough,
                      f"{planned_images} planned training images < compute.compile_min_images "
                      f"{compute.get('compile_min_images', COMPILE_MIN_IMAGES)}")
    if compiled and compute.get("compile", "auto") == "auto":
        if not (cpp_compiler_available() if compiler is None else compiler):
            compiled = False
            reasons[-1] = "compile False (auto: no C++ compiler for torch.compile found)"
    channels_last = choose("channels_last", CHANNELS_LAST_NETWORKS, compiled or threads == 1,
                           f"eager with {threads} threads, where NCHW is faster")
    return Speed(channels_last, compiled, "; ".join(reversed(reasons)))
