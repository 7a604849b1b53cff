#!/usr/bin/env bash
# Fetch the MTCNN weights and the test photographs from PyPI wheels, pinned.
#
#   bash models/fetch.sh
#
# Writes (both git-ignored):
#   models/mtcnn/{pnet,rnet,onet}.safetensors and MODEL.json
#     from facenet-pytorch's wheel (legacy torch .pt files, converted by
#     models/convert_legacy_pt.py with Python's standard library only);
#   models/fixtures/*.png, *.jpg
#     sample photographs from scikit-image's wheel, plus astronaut_pair.png,
#     astronaut beside its mirror image (two faces), made with ffmpeg.
#
# Wheels are cached in ${XDG_CACHE_HOME:-$HOME/.cache}/sprocket/wheels and checked
# against the sha256 pinned here. A second run only verifies and returns.
set -euo pipefail

FACENET_VERSION=2.6.0
FACENET_WHEEL=facenet_pytorch-2.6.0-py3-none-any.whl
FACENET_SHA256=ecb82b27beb226d106f2219efe8f829b01b87a8595badd01545679bdb9f19cca
# scikit-image wheels are per platform; one is pinned (the photos are the same in all).
SKIMAGE_VERSION=0.26.0
SKIMAGE_WHEEL=scikit_image-0.26.0-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl
SKIMAGE_SHA256=74aa5518ccea28121f57a95374581d3b979839adc25bb03f289b1bc9b99c58af
# astronaut, coffee and camera serve the face and sample tests; the rest make the
# shot-detection corpus (workers/media/tests/photo_cuts.rs): similar textures
# (brick, grass, gravel), similar framings (motorcycle_left/right) and scenes.
SKIMAGE_PHOTOS=(astronaut.png coffee.png camera.png brick.png grass.png gravel.png chelsea.png
  rocket.jpg coins.png moon.png hubble_deep_field.jpg motorcycle_left.png motorcycle_right.png
  page.png ihc.png retina.jpg)
FIXTURES=("${SKIMAGE_PHOTOS[@]}" astronaut_pair.png)

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
model_dir="$here/mtcnn"
fixture_dir="$here/fixtures"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/sprocket/wheels"
python=${PYTHON:-python3}
source_line="facenet-pytorch==$FACENET_VERSION (PyPI wheel)"

# Whether MODEL.json names this pin and every weights file matches its hash.
model_ok() {
  "$python" - "$model_dir" "$source_line" <<'EOF'
import hashlib, json, os, sys
d, source = sys.argv[1], sys.argv[2]
try:
    info = json.load(open(os.path.join(d, "MODEL.json")))
    if info.get("source") != source:
        sys.exit(1)
    for name, digest in info["sha256"].items():
        if hashlib.sha256(open(os.path.join(d, name), "rb").read()).hexdigest() != digest:
            sys.exit(1)
    sys.exit(0 if len(info["sha256"]) == 3 else 1)
except (OSError, ValueError, KeyError):
    sys.exit(1)
EOF
}

fixtures_ok() {
  local f
  for f in "${FIXTURES[@]}"; do
    [ -s "$fixture_dir/$f" ] || return 1
  done
}

# fetch_wheel SPEC FILE SHA256 [pip options...]: the verified wheel's path on stdout.
fetch_wheel() {
  local spec=$1 file=$2 sha=$3
  shift 3
  mkdir -p "$cache"
  if [ ! -f "$cache/$file" ] || ! echo "$sha  $cache/$file" | sha256sum -c --quiet - >/dev/null 2>&1; then
    rm -f "$cache/$file"
    "$python" -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
      "$@" -d "$cache" "$spec" >&2
  fi
  if ! echo "$sha  $cache/$file" | sha256sum -c --quiet - >/dev/null 2>&1; then
    echo "fetch.sh: $cache/$file is missing or does not match sha256 $sha" >&2
    exit 1
  fi
  echo "$cache/$file"
}

# unzip_members WHEEL DEST MEMBER...: extract members flat into DEST.
unzip_members() {
  "$python" - "$@" <<'EOF'
import os, sys, zipfile
wheel, dest, members = sys.argv[1], sys.argv[2], sys.argv[3:]
os.makedirs(dest, exist_ok=True)
with zipfile.ZipFile(wheel) as z:
    for m in members:
        tmp = os.path.join(dest, "." + os.path.basename(m) + ".part")
        with z.open(m) as src, open(tmp, "wb") as out:
            out.write(src.read())
        os.replace(tmp, os.path.join(dest, os.path.basename(m)))
EOF
}

if model_ok; then
  echo "fetch.sh: MTCNN weights in $model_dir are up to date"
else
  wheel=$(fetch_wheel "facenet-pytorch==$FACENET_VERSION" "$FACENET_WHEEL" "$FACENET_SHA256")
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  unzip_members "$wheel" "$work" facenet_pytorch/data/pnet.pt facenet_pytorch/data/rnet.pt \
    facenet_pytorch/data/onet.pt
  mkdir -p "$model_dir"
  for net in pnet rnet onet; do
    "$python" "$here/convert_legacy_pt.py" "$work/$net.pt" "$work/$net.safetensors" >/dev/null
    mv "$work/$net.safetensors" "$model_dir/$net.safetensors"
  done
  "$python" - "$model_dir" "$source_line" <<'EOF'
import hashlib, json, os, sys
d, source = sys.argv[1], sys.argv[2]
digests = {}
for net in ("pnet", "rnet", "onet"):
    name = net + ".safetensors"
    digests[name] = hashlib.sha256(open(os.path.join(d, name), "rb").read()).hexdigest()
info = {"name": "mtcnn", "source": source, "sha256": digests}
with open(os.path.join(d, "MODEL.json"), "w") as f:
    json.dump(info, f, indent=2)
    f.write("\n")
EOF
  model_ok || { echo "fetch.sh: conversion did not verify" >&2; exit 1; }
  echo "fetch.sh: MTCNN weights written to $model_dir"
fi

if [ "${1:-}" = "--weights-only" ]; then
  # Images (the Dockerfile) need the weights, not the test photographs.
  exit 0
elif fixtures_ok; then
  echo "fetch.sh: fixtures in $fixture_dir are present"
else
  wheel=$(fetch_wheel "scikit-image==$SKIMAGE_VERSION" "$SKIMAGE_WHEEL" "$SKIMAGE_SHA256" \
    --platform manylinux_2_28_x86_64 --python-version 3.11 --implementation cp --abi cp311)
  members=()
  for f in "${SKIMAGE_PHOTOS[@]}"; do members+=("skimage/data/$f"); done
  unzip_members "$wheel" "$fixture_dir" "${members[@]}"
  # Two faces: astronaut and its mirror image side by side (lossless, exact).
  ffmpeg -nostdin -v error -y -i "$fixture_dir/astronaut.png" \
    -filter_complex "[0:v]split[a][b];[b]hflip[f];[a][f]hstack=inputs=2,format=rgb24" \
    -frames:v 1 "$fixture_dir/.astronaut_pair.png"
  mv "$fixture_dir/.astronaut_pair.png" "$fixture_dir/astronaut_pair.png"
  echo "fetch.sh: fixtures written to $fixture_dir"
fi
