#!/usr/bin/env python3
"""Golden MTCNN detections from facenet-pytorch itself, for tests/faces.rs.

Run from the repository root, after `bash models/fetch.sh` (the photographs) and
with facenet-pytorch in its own virtualenv (torch is large and pins old versions,
so it is kept apart from .venv; .venv-torch/ is git-ignored):

    bash scripts/torch-venv.sh
    .venv-torch/bin/python workers/media/tests/reference/mtcnn_golden.py

It runs `MTCNN(keep_all=True, device='cpu').detect(img, landmarks=True)` with the
default parameters on each fixture photograph (read with PIL, as RGB) and writes
mtcnn_golden.json beside this script: per photo its size and the faces in
facenet-pytorch's order (largest box first), each with its box (x1, y1, x2, y2 in
pixels), probability and five landmarks, plus the versions that produced them.
"""

import json
import os
import sys

import numpy as np
import PIL
import torch
import torchvision
from PIL import Image

from facenet_pytorch import MTCNN

# The fixture photographs (models/fixtures/, from models/fetch.sh), in order.
PHOTOS = ["astronaut.png", "astronaut_pair.png", "camera.png", "coffee.png"]

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "../../../.."))
FIXTURES = os.path.join(ROOT, "models", "fixtures")


def facenet_version():
    from importlib.metadata import version

    return version("facenet-pytorch")


def detect(mtcnn, path):
    img = Image.open(path).convert("RGB")
    boxes, probs, points = mtcnn.detect(img, landmarks=True)
    faces = []
    if boxes is not None:
        for box, prob, pts in zip(boxes, probs, points):
            faces.append(
                {
                    "bbox": [float(v) for v in box],
                    "prob": float(prob),
                    "landmarks": [[float(x), float(y)] for x, y in np.asarray(pts)],
                }
            )
    return {"width": img.width, "height": img.height, "faces": faces}


def main():
    torch.manual_seed(0)
    mtcnn = MTCNN(keep_all=True, device="cpu")
    photos = {}
    for name in PHOTOS:
        path = os.path.join(FIXTURES, name)
        if not os.path.exists(path):
            sys.exit(f"{path} is missing: run `bash models/fetch.sh` first")
        photos[name] = detect(mtcnn, path)
        print(f"{name}: {len(photos[name]['faces'])} face(s)")
    golden = {
        "detector": "facenet_pytorch.MTCNN(keep_all=True, device='cpu')"
        ".detect(img, landmarks=True), default parameters",
        "versions": {
            "facenet-pytorch": facenet_version(),
            "torch": torch.__version__,
            "torchvision": torchvision.__version__,
            "numpy": np.__version__,
            "pillow": PIL.__version__,
        },
        "photos": photos,
    }
    out = os.path.join(HERE, "mtcnn_golden.json")
    with open(out, "w") as f:
        json.dump(golden, f, indent=1)
        f.write("\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
