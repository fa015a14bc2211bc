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
RUN cargo chef cook --release --locked --recipe-path recipe.json
COPY . .
RUN cargo build --release --locked --bins \
 && mkdir /out \
 && cp target/release/user-svc target/release/order-svc target/release/gateway target/release/bus /out/

FROM debian:bookworm-slim AS runtime
# Every path a container writes is owned by the service user: /data/keys is where
# compose mounts the user-svc-keys volume, and a new named volume takes the owner of the
# image's directory (a mount point the image lacked would be root's, and user-svc could
# not write its development key).
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home /data shop \
 && mkdir -p /data/keys && chown -R shop:shop /data && chmod 700 /data/keys
COPY --from=builder /out/ /usr/local/bin/
# The demo catalog order-svc loads when CATALOG_SEED points at it (compose does).
COPY deploy/catalog/demo.json /usr/local/share/shop/catalog-demo.json
USER shop
WORKDIR /data
ENV LOG_FORMAT=json
CMD ["gateway"]
