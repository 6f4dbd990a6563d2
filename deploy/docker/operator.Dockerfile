# syntax=docker/dockerfile:1.7
#
# cascor-operator on a distroless base (glibc, CA certificates, no shell):
#
#   docker build -f deploy/docker/operator.Dockerfile -t cascor-operator:dev .
#
# The build context is the repository root. The operator does not link libtorch, so the
# build needs no Python or PyTorch.

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS build
ENV CARGO_TARGET_DIR=/build/target
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/build/target,id=operator-target \
    cargo build --release --locked -p cascor-operator --bin cascor-operator \
    && install -D -m 0755 /build/target/release/cascor-operator /rootfs/usr/local/bin/cascor-operator

# distroless/cc keeps the glibc and libgcc that a default Rust build links against;
# the :nonroot tag runs as uid and gid 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
ARG GIT_SHA=""
ARG BUILD_DATE=""
LABEL org.opencontainers.image.title="cascor-operator" \
      org.opencontainers.image.description="Kubernetes operator for CascorWorkerPool: juniper-cascor worker fleets" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.source="https://github.com/juniper-platform/juniper-cascor-rs" \
      org.opencontainers.image.revision="${GIT_SHA}" \
      org.opencontainers.image.created="${BUILD_DATE}"
COPY --from=build /rootfs/ /
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/cascor-operator"]
