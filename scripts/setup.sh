#!/usr/bin/env bash
# Set up monai_ssl in ./.venv: PyTorch (the CPU build where no NVIDIA GPU is present), then the
# package with MONAI and the test tools. Safe to run again: it skips the work once done.
#
# Usage: bash scripts/setup.sh [--label]
#   --label  also install MONAI Label (the server of apps/monai_ssl, docs/monai_label.md) without its
#            declared dependencies (they pull torchvision, sam2 and a CUDA torch), then the packages
#            it imports (setup.cfg's [label] extra, which pins pydicom 2.4.4 for pydicom-seg).
#
# Environment:
#   PYTHON           interpreter for the virtual environment (default: python3)
#   TORCH_INDEX_URL  a pip index to take torch from (for example PyTorch's CPU wheel index on a
#                    machine whose default index only has CUDA builds)
set -euo pipefail
cd "$(dirname "$0")/.."

LABEL=0
for arg in "$@"; do
    case "$arg" in
        --label) LABEL=1 ;;
        *) echo "setup: unknown option $arg (expected --label)" >&2; exit 2 ;;
    esac
done
MONAILABEL_VERSION=0.8.5

PYTHON=${PYTHON:-python3}
VENV=.venv
STAMP=$VENV/.monai_ssl-setup
WANT="$( (cat setup.cfg scripts/setup.sh; echo "label=$LABEL") | sha256sum | cut -d' ' -f1)"
CHECK="import monai_ssl, torch"
[ "$LABEL" = 1 ] && CHECK="$CHECK, monailabel"

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ] && "$VENV/bin/python" -c "$CHECK" 2>/dev/null; then
    echo "setup: $VENV is up to date"
    exit 0
fi

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip install --disable-pip-version-check -q)

# torch first: with torch already installed, pip keeps it for the bounded requirement in setup.cfg
# instead of pulling the newest release (and several GB of CUDA libraries on a CPU-only machine).
if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
    INDEX=()
    [ -n "${TORCH_INDEX_URL:-}" ] && INDEX=(--index-url "$TORCH_INDEX_URL")
    if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
        echo "setup: NVIDIA GPU found, installing the CUDA build of PyTorch"
        "${PIP[@]}" "${INDEX[@]}" "torch>=2.8,<2.14"
    else
        echo "setup: no GPU found, installing the CPU build of PyTorch 2.13.0"
        "${PIP[@]}" "${INDEX[@]}" "torch==2.13.0"
    fi
fi

if [ "$LABEL" = 1 ]; then
    echo "setup: installing monai_ssl with MONAI, the test tools and MONAI Label $MONAILABEL_VERSION"
    "${PIP[@]}" -e ".[test,label]"
    "${PIP[@]}" --no-deps "monailabel==$MONAILABEL_VERSION"
    "$VENV/bin/python" -c "import monailabel.interfaces.app, monai_ssl.label.app" \
        || { echo "setup: MONAI Label does not import; see the error above" >&2; exit 1; }
else
    echo "setup: installing monai_ssl with MONAI and the test tools"
    "${PIP[@]}" -e ".[test]"
fi
"$VENV/bin/python" -c "import monai_ssl, torch, monai; print(f'setup: monai_ssl {monai_ssl.__version__}, torch {torch.__version__}, monai {monai.__version__}')"
echo "$WANT" > "$STAMP"
