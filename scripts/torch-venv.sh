#!/usr/bin/env bash
# Makes .venv-torch: facenet-pytorch's own MTCNN with the torch it was
# released against, for the reference side of MTCNN work only — the golden
# detections (workers/media/tests/reference/mtcnn_golden.py) and the
# facenet-pytorch rates of the `mtcnn` and `analyze` benches. The tests do not
# need it (the golden file is committed), so .ci/setup does not run this: torch
# from PyPI brings about 2.5 GB of CUDA libraries. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv-torch
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import facenet_pytorch, torch' 2>/dev/null; then
  echo "torch-venv: $venv is ready"
  exit 0
fi
python3 -m venv "$venv"
"$venv/bin/pip" install -q torch==2.2.2 torchvision==0.17.2 numpy==1.26.4 \
  pillow==10.2.0 requests tqdm
# Its own dependency pins would replace the torch above.
"$venv/bin/pip" install -q --no-deps facenet-pytorch==2.6.0
"$venv/bin/python" -c 'import facenet_pytorch, torch; print("torch-venv: torch", torch.__version__, "ready in .venv-torch")'
