#!/usr/bin/env bash
# Install the project and everything it needs into the active Python environment.
#   python3.11 -m venv .venv && . .venv/bin/activate && ./install.sh
set -euo pipefail
cd "$(dirname "$0")"
python -m pip install --upgrade -q pip
python -m pip install -c envs/constraints.txt -e ".[dev]"
# medmnist declares torchvision (which drags in a CUDA torch); its loaders and Evaluator do not need it.
python -m pip install -c envs/constraints.txt --no-deps medmnist==3.0.2
# The optional baselines extra (escnn: SCNN / E2CNN / RPP of Tables 4 and 6) needs a Fortran compiler;
# without one every other target still builds and the baseline rules say how to install it.
if [ -n "${FC:-}" ] || command -v gfortran >/dev/null || command -v flang >/dev/null || command -v flang-new >/dev/null; then
    envs/install_baselines.sh
else
    echo "install.sh: no Fortran compiler found: skipping the optional baselines extra (escnn)." \
         "To add it: apt-get install -y gfortran && envs/install_baselines.sh" >&2
fi
python - <<'PY'
import torch, snakemake, medmnist, phi
print(f"installed: torch {torch.__version__} (cuda={torch.version.cuda}), medmnist {medmnist.__version__}")
PY
