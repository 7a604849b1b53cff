#!/usr/bin/env bash
# Tools the load benches drive from outside (not needed by the test suite):
# oha, the HTTP load generator `cargo bench -p sprocket-tests --bench api`
# runs at a fixed rate (tests/bench/API.md).
#
#   scripts/bench-tools.sh install   build oha from crates.io into $SPROCKET_TOOLS/bin (once)
#   scripts/bench-tools.sh path      print the directory the tools are in
#
# Environment:
#   SPROCKET_TOOLS   where the tools go (default ~/.cache/sprocket)
set -euo pipefail

OHA_VERSION=1.16.0
root="${SPROCKET_TOOLS:-$HOME/.cache/sprocket}"

case "${1:-}" in
install)
    if [[ -x "$root/bin/oha" ]] && "$root/bin/oha" --version | grep -q "$OHA_VERSION"; then
        echo "oha $OHA_VERSION already in $root/bin"
    else
        cargo install oha --version "$OHA_VERSION" --locked --root "$root"
    fi
    ;;
path)
    echo "$root/bin"
    ;;
*)
    sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
