# syntax=docker/dockerfile:1.7
#
# juniper-cascor-worker on libtorch, in two variants selected with --target:
#
#   docker build -f deploy/docker/worker.Dockerfile --target cpu  -t juniper-cascor-worker:dev .
#   docker build -f deploy/docker/worker.Dockerfile --target cuda -t juniper-cascor-worker:dev-cuda .
#
# The build context is the repository root. Both variants compile against the libtorch
# of a PyTorch wheel, because tch 0.26 expects PyTorch 2.13.0 and the wheel is what the
# project tests against. The CPU variant takes the CPU-only wheel from the PyTorch index
# (about 200 MB of libraries); the CUDA variant takes the PyPI wheel, which brings the CUDA
# runtime as nvidia-* wheels (about 3.5 GB).
#
# The wheel goes into /opt/pytorch with `pip install --target`. The worker's build script
# records <site-packages>/torch/lib as the binary's RPATH, and the torch libraries find the
# nvidia-* libraries through RPATH entries relative to themselves. The runtime stage
# therefore copies the libraries to the same absolute paths, and LD_LIBRARY_PATH names
# them as well for anything loaded with dlopen by a bare file name.

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm
ARG TORCH_VERSION=2.13.0

# ---------------------------------------------------------------------------------------
# Build stages
# ---------------------------------------------------------------------------------------
FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS build-base
# Debian packages follow the base image's point release, so they are not pinned.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-pip \
    && rm -rf /var/lib/apt/lists/*
ENV PYTHONPATH=/opt/pytorch \
    LIBTORCH_USE_PYTORCH=1 \
    CARGO_TARGET_DIR=/build/target
WORKDIR /src

FROM build-base AS torch-cpu
ARG TORCH_VERSION
RUN python3 -m pip install --no-cache-dir --break-system-packages --target /opt/pytorch \
        --index-url https://download.pytorch.org/whl/cpu "torch==${TORCH_VERSION}"

FROM build-base AS torch-cuda
ARG TORCH_VERSION
RUN python3 -m pip install --no-cache-dir --break-system-packages --target /opt/pytorch \
        "torch==${TORCH_VERSION}"

# Compiles the worker and collects, under /rootfs, the binary and the shared libraries
# it needs at their build-time paths.
FROM torch-cpu AS build-cpu
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/build/target,id=worker-cpu-target \
    cargo build --release --locked -p juniper-cascor-worker \
    && install -D -m 0755 /build/target/release/juniper-cascor-worker /rootfs/usr/local/bin/juniper-cascor-worker \
    && mkdir -p /rootfs/opt/pytorch/torch \
    && cp -a /opt/pytorch/torch/lib /rootfs/opt/pytorch/torch/lib \
    && if [ -d /opt/pytorch/torch.libs ]; then cp -a /opt/pytorch/torch.libs /rootfs/opt/pytorch/; fi

FROM torch-cuda AS build-cuda
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/build/target,id=worker-cuda-target \
    cargo build --release --locked -p juniper-cascor-worker \
    && install -D -m 0755 /build/target/release/juniper-cascor-worker /rootfs/usr/local/bin/juniper-cascor-worker \
    && mkdir -p /rootfs/opt/pytorch/torch \
    && cp -a /opt/pytorch/torch/lib /rootfs/opt/pytorch/torch/lib \
    && cp -a /opt/pytorch/nvidia /rootfs/opt/pytorch/nvidia \
    && if [ -d /opt/pytorch/torch.libs ]; then cp -a /opt/pytorch/torch.libs /rootfs/opt/pytorch/; fi

# ---------------------------------------------------------------------------------------
# Runtime stages
# ---------------------------------------------------------------------------------------
FROM debian:${DEBIAN_RELEASE}-slim AS runtime-base
ARG GIT_SHA=""
ARG BUILD_DATE=""
# The torch libraries bring their own libgomp but need the system libstdc++.
# ca-certificates lets the worker verify wss:// servers against the system roots.
# Debian packages follow the base image's point release, so they are not pinned.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates libstdc++6 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 1000 cascor \
    && useradd --uid 1000 --gid 1000 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin cascor
ENV LD_LIBRARY_PATH=/opt/pytorch/torch/lib \
    JUNIPER_CASCOR_WORKER_HEALTH_BIND=0.0.0.0 \
    JUNIPER_CASCOR_WORKER_GIT_SHA=${GIT_SHA} \
    JUNIPER_CASCOR_WORKER_BUILD_DATE=${BUILD_DATE}
LABEL org.opencontainers.image.title="juniper-cascor-worker" \
      org.opencontainers.image.description="Cascade-Correlation candidate worker for juniper-cascor, on libtorch" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.source="https://github.com/juniper-platform/juniper-cascor-rs" \
      org.opencontainers.image.revision="${GIT_SHA}" \
      org.opencontainers.image.created="${BUILD_DATE}"
# The health server: /v1/health, /v1/health/live, /v1/health/ready and /metrics.
EXPOSE 8210
USER 1000:1000
ENTRYPOINT ["/usr/local/bin/juniper-cascor-worker"]
CMD ["--server-url", "ws://juniper-cascor:8200/ws/v1/workers"]

FROM runtime-base AS cuda
# Read by the NVIDIA container runtime, which mounts the driver libraries (libcuda.so).
ENV NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility
COPY --from=build-cuda /rootfs/ /

# The CPU variant is last, so a build without --target produces it.
FROM runtime-base AS cpu
COPY --from=build-cpu /rootfs/ /
