# syntax=docker/dockerfile:1.7
# The sprocket image: one binary for every role (api, projector, worker <phase>,
# migrate, topics create), on debian-slim with ffmpeg, running as a non-root user.
#
#   docker build -t sprocket:dev .
#   docker run --rm sprocket:dev --help

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

FROM rust:${RUST_VERSION}-slim-${DEBIAN_RELEASE} AS builder
# Native build dependencies: librdkafka (built by rdkafka-sys), OpenSSL, libpq, zlib.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      build-essential cmake pkg-config perl python3 python3-pip libssl-dev libpq-dev zlib1g-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p sprocket --bin sprocket \
 && install -D -m 0755 target/release/sprocket /out/bin/sprocket
# Model weights: MTCNN's, from the facenet-pytorch wheel on PyPI (verified by
# its sha256) converted to safetensors by models/fetch.sh; never fetched at run time.
RUN bash models/fetch.sh --weights-only \
 && mkdir -p /out/models \
 && cp -a models/mtcnn /out/models/

FROM debian:${DEBIAN_RELEASE}-slim AS runtime
# ffmpeg/ffprobe for the media phases, libpq for PostgreSQL projections, tini as
# PID 1 so signals reach sprocket and zombies (ffmpeg children) are reaped.
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
