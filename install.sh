#!/usr/bin/env bash
# Install the project and everything it needs into the active Python environment.
#   python3.11 -m venv .venv && . .venv/bin/activate && ./install.sh
set -euo pipefail
cd "$(dirname "$0")"
python -m pip install --upgrade -q pip
python -m pip install -c envs/constraints.txt -e ".[dev]"
# medmnist declares torchvision (which drags in a CUDA torch); its loaders and Evaluator do not need it.
python -m pip install -c envs/constraints.txt --no-deps medmnist==3.0.2
# The baselines extra (escnn: SCNN / E2CNN / RPP of Tables 4 and 6); no Fortran needed (see there).
envs/install_baselines.sh
python - <<'PY'
import torch, snakemake, medmnist, phi
print(f"installed: torch {torch.__version__} (cuda={torch.version.cuda}), medmnist {medmnist.__version__}")
PY
