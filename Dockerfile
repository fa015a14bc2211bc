# syntax=docker/dockerfile:1
# One image with all binaries (user-svc, order-svc, gateway, bus); compose picks the
# command. cargo-chef builds the dependencies in their own layer, so a code change
# rebuilds only our crates.
ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS chef
RUN cargo install cargo-chef --locked --version ^0.1
WORKDIR /src

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
COPY --from=planner /src/recipe.json recipe.json
# The patched crates of `[patch.crates-io]` (vendor/README.md) are dependencies too:
# present before the dependency layer is cooked.
COPY vendor vendor
RUN cargo chef cook --release --locked --recipe-path recipe.json
COPY . .
RUN cargo build --release --locked --bins \
 && mkdir /out \
 && cp target/release/user-svc target/release/order-svc target/release/gateway target/release/bus /out/

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home /data shop \
 && mkdir -p /data && chown shop /data
COPY --from=builder /out/ /usr/local/bin/
USER shop
WORKDIR /data
ENV LOG_FORMAT=json
CMD ["gateway"]
