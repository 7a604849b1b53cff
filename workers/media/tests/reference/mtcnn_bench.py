#!/usr/bin/env python3
"""Times facenet-pytorch's MTCNN.detect on CPU, for the mtcnn and analyze
benches (benches/mtcnn/timing.rs).

    .venv-torch/bin/python workers/media/tests/reference/mtcnn_bench.py \
        --threads 2 --iterations 20 models/fixtures/astronaut.png ...

(.venv-torch is made by `bash scripts/torch-venv.sh`.) The images are decoded
to RGB arrays first, as Sprocket's bench decodes them to RGB24 bytes, so only
detection is timed: one warm-up pass, then `iterations` passes over all images.
Prints one line: `facenet-pytorch images_per_second=N (mean M) threads=T images=K`,
N from the median pass (less disturbed by a busy machine), M over all passes.
"""

import argparse
import statistics
import time

import numpy as np
import torch
from PIL import Image

from facenet_pytorch import MTCNN


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("images", nargs="+")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    mtcnn = MTCNN(keep_all=True, device="cpu")
    images = [np.asarray(Image.open(p).convert("RGB")) for p in args.images]
    for img in images:
        mtcnn.detect(img, landmarks=True)
    passes = []
    for _ in range(args.iterations):
        start = time.perf_counter()
        for img in images:
            mtcnn.detect(img, landmarks=True)
        passes.append(time.perf_counter() - start)
    mean = args.iterations * len(images) / sum(passes)
    rate = len(images) / statistics.median(passes)
    print(
        f"facenet-pytorch images_per_second={rate:.3f} (mean {mean:.3f}) "
        f"threads={torch.get_num_threads()} images={len(images)}"
    )


if __name__ == "__main__":
    main()
