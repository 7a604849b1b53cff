#!/usr/bin/env python3
"""Times PySceneDetect's adaptive detector on a video, for Sprocket's analyze
benchmark (workers/media/benches/analyze.rs).

    scenedetect_speed.py VIDEO

Runs `scenedetect.detect(VIDEO, AdaptiveDetector())` with PySceneDetect's
defaults (OpenCV backend, automatic downscaling) and prints one JSON object:
{"version", "seconds" (the detect call only, not Python's start-up or
imports), "frames", "width", "height", "downscale", "analysis_width",
"analysis_height", "cuts"}. The downscale is the factor PySceneDetect's
SceneManager picks by default (`compute_downscale_factor`, frames resized
with linear interpolation to about 256 pixels wide).
"""

import json
import sys
import time

import scenedetect
from scenedetect import AdaptiveDetector, detect, open_video
from scenedetect.scene_manager import compute_downscale_factor


def main() -> int:
    path = sys.argv[1]
    start = time.perf_counter()
    scenes = detect(path, AdaptiveDetector())
    seconds = time.perf_counter() - start

    video = open_video(path)
    width, height = video.frame_size
    factor = compute_downscale_factor(width)
    frames = scenes[-1][1].get_frames() if scenes else video.duration.get_frames()
    json.dump(
        {
            "version": scenedetect.__version__,
            "seconds": seconds,
            "frames": frames,
            "width": width,
            "height": height,
            "downscale": factor,
            "analysis_width": int(width / factor),
            "analysis_height": int(height / factor),
            "cuts": [start.get_frames() for start, _end in scenes[1:]],
        },
        sys.stdout,
    )
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
