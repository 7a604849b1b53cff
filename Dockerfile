# syntax=docker/dockerfile:1.7
# The sprocket image: one binary for every role (api, projector, worker <phase>,
# webhooks, janitor, migrate, topics create), on debian-slim with ffmpeg,
# running as a non-root user. For linux/amd64 and linux/arm64:
#
#   docker build -t sprocket:dev .                      # this machine's platform
#   docker buildx build --platform linux/amd64,linux/arm64 -t REGISTRY/sprocket:TAG --push .
#   docker run --rm sprocket:dev --help
#
# The builder stage runs on the build machine's own platform ($BUILDPLATFORM)
# and cross-compiles for each target ($TARGETARCH) with Debian's cross gcc and
# the target's libraries (dpkg multiarch), instead of running rustc under QEMU
# for the foreign platform, which is many times slower for a release build of
# this size. Only the runtime stage is per platform, and it only installs
# Debian's packages (ffmpeg among them) for its architecture. The MTCNN
# weights are data, the same for every platform.

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

FROM --platform=$BUILDPLATFORM rust:${RUST_VERSION}-slim-${DEBIAN_RELEASE} AS builder
ARG TARGETARCH
ARG BUILDARCH
# The target's Rust triple, GNU triple and Debian cross-compiler suffix, from
# Docker's architecture name.
RUN case "$TARGETARCH" in \
      amd64) echo "x86_64-unknown-linux-gnu x86_64-linux-gnu x86-64-linux-gnu" ;; \
      arm64) echo "aarch64-unknown-linux-gnu aarch64-linux-gnu aarch64-linux-gnu" ;; \
      *) echo "unsupported TARGETARCH $TARGETARCH: add its triples here" >&2; exit 1 ;; \
    esac > /etc/sprocket-target
# Native build dependencies, for the target architecture: librdkafka (built by
# rdkafka-sys), OpenSSL, libpq, zlib; and the C toolchain that makes its code.
RUN read -r rust_target gnu_target cross_suffix < /etc/sprocket-target \
 && if [ "$TARGETARCH" != "$BUILDARCH" ]; then \
      dpkg --add-architecture "$TARGETARCH"; \
      cross="gcc-$cross_suffix g++-$cross_suffix binutils-$cross_suffix libc6-dev-$TARGETARCH-cross"; \
    fi \
 && apt-get update \
 && apt-get install -y --no-install-recommends \
      build-essential cmake pkg-config perl python3 python3-pip ${cross:-} \
      libssl-dev:$TARGETARCH libpq-dev:$TARGETARCH zlib1g-dev:$TARGETARCH \
 && rm -rf /var/lib/apt/lists/* \
 && rustup target add "$rust_target"
WORKDIR /src
COPY . .
# cc (ring, sqlite, …), librdkafka's configure (plain CC and AR), pkg-config
# (OpenSSL, for openssl-sys and librdkafka) and pq-sys pick the target's
# compiler and libraries from these; build scripts' own C stays on HOST_CC.
# For a native build they name the native tools, so one command serves both.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target,id=sprocket-target-$TARGETARCH \
    read -r rust_target gnu_target cross_suffix < /etc/sprocket-target \
 && triple=$(echo "$rust_target" | tr - _) \
 && TRIPLE=$(echo "$triple" | tr a-z A-Z) \
 && export "CC_$triple=$gnu_target-gcc" "CXX_$triple=$gnu_target-g++" "AR_$triple=$gnu_target-ar" \
      "CARGO_TARGET_${TRIPLE}_LINKER=$gnu_target-gcc" \
      CC="$gnu_target-gcc" CXX="$gnu_target-g++" AR="$gnu_target-ar" RANLIB="$gnu_target-ranlib" \
      HOST_CC=gcc HOST_CXX=g++ \
      PKG_CONFIG_ALLOW_CROSS=1 \
      PKG_CONFIG_LIBDIR="/usr/lib/$gnu_target/pkgconfig:/usr/share/pkgconfig" \
      PQ_LIB_DIR="/usr/lib/$gnu_target" \
 && cargo build --release --locked --target "$rust_target" -p sprocket --bin sprocket \
 && install -D -m 0755 "target/$rust_target/release/sprocket" /out/bin/sprocket
# Model weights: MTCNN's, from the facenet-pytorch wheel on PyPI (a
# py3-none-any wheel, verified by its sha256) converted to safetensors by
# models/fetch.sh; never fetched at run time. --weights-only skips the test
# photographs (a platform wheel), so nothing here depends on the platform.
RUN bash models/fetch.sh --weights-only \
 && mkdir -p /out/models \
 && cp -a models/mtcnn /out/models/

FROM debian:${DEBIAN_RELEASE}-slim AS runtime
# ffmpeg/ffprobe for the media phases (Debian's build for this stage's
# architecture), libpq for PostgreSQL projections, tini as PID 1 so signals
# reach sprocket and zombies (ffmpeg children) are reaped.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      ca-certificates ffmpeg libpq5 libssl3 tini \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 sprocket \
 && useradd --system --uid 10001 --gid sprocket --home-dir /var/lib/sprocket \
      --shell /usr/sbin/nologin sprocket \
 && install -d -o sprocket -g sprocket /var/lib/sprocket /scratch
COPY --from=builder /out/bin/sprocket /usr/local/bin/sprocket
COPY --from=builder /out/models /opt/sprocket/models
USER 10001:10001
WORKDIR /var/lib/sprocket
ENV TMPDIR=/tmp \
    SPROCKET__WORKER__SCRATCH_DIR=/scratch \
    SPROCKET_MODELS_DIR=/opt/sprocket/models
EXPOSE 8080 9090
# sprocket shuts down gracefully on SIGINT (Ctrl-C): workers stop polling and
# give up their partitions. Docker and Kubernetes (containerd, CRI-O) send the
# image's STOPSIGNAL on stop.
STOPSIGNAL SIGINT
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/sprocket"]
CMD ["--help"]
