#!/usr/bin/env python3
"""Prints PySceneDetect's cut list for a video as JSON, for Sprocket's
reference tests (workers/media/tests/scenedetect.rs, hard_cases.rs).

    scenedetect_cuts.py content  VIDEO [--threshold 27] [--min-scene-len 15] [--filter-mode merge|suppress]
    scenedetect_cuts.py adaptive VIDEO [--adaptive-threshold 3] [--window-width 2]
                                       [--min-content-val 15] [--min-scene-len 15]

Output: {"version": "...", "detector": "...", "frames": N, "cuts": [frame, ...]}
where each cut is the index of the frame that starts a new scene. Frames are
read at full size (no downscaling), as Sprocket's analysis frames are.
"""

import argparse
import json
import sys

import scenedetect
from scenedetect import ContentDetector, AdaptiveDetector, SceneManager, open_video
from scenedetect.scene_detector import FlashFilter


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("detector", choices=["content", "adaptive"])
    parser.add_argument("video")
    parser.add_argument("--threshold", type=float, default=27.0)
    parser.add_argument("--min-scene-len", type=int, default=15)
    parser.add_argument("--filter-mode", choices=["merge", "suppress"], default="merge")
    parser.add_argument("--adaptive-threshold", type=float, default=3.0)
    parser.add_argument("--window-width", type=int, default=2)
    parser.add_argument("--min-content-val", type=float, default=15.0)
    args = parser.parse_args()

    if args.detector == "content":
        mode = FlashFilter.Mode[args.filter_mode.upper()]
        detector = ContentDetector(
            threshold=args.threshold, min_scene_len=args.min_scene_len, filter_mode=mode
        )
    else:
        detector = AdaptiveDetector(
            adaptive_threshold=args.adaptive_threshold,
            window_width=args.window_width,
            min_content_val=args.min_content_val,
            min_scene_len=args.min_scene_len,
        )
    video = open_video(args.video, backend="opencv")
    manager = SceneManager()
    manager.auto_downscale = False
    manager.downscale = 1
    manager.add_detector(detector)
    frames = manager.detect_scenes(video=video)
    scenes = manager.get_scene_list(start_in_scene=True)
    cuts = [start.get_frames() for start, _end in scenes[1:]]
    json.dump(
        {
            "version": scenedetect.__version__,
            "detector": args.detector,
            "frames": frames,
            "cuts": cuts,
        },
        sys.stdout,
    )
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
