#!/usr/bin/env bash
# `make bench`: a release build of the whole system on its own port, databases and
# broker names (rate limits off), driven over HTTP by shop-bench; then stopped and
# cleaned up. `BENCH_SOAK_SECS=300 make bench` adds a soak run. The orders reserve stock
# from the demo catalog system.sh loads (deploy/catalog/demo.json).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh

export RUN_DIR=${RUN_DIR:-$PWD/.run/bench}
export GATEWAY_PORT=${BENCH_PORT:-18080}
export BUS_PREFIX=${BENCH_BUS_PREFIX:-bench}
export USERS_DB=bench_users ORDERS_DB=bench_orders
export RATE_LIMIT_AUTH_PER_MIN=0 RATE_LIMIT_ANON_PER_MIN=0 RATE_LIMIT_USER_PER_MIN=0
export BUILD_PROFILE=release SHOP_NATIVE=1
export RUST_LOG=${RUST_LOG:-info,sqlx=warn} LOG_FORMAT=${LOG_FORMAT:-pretty}
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432}
MGMT=${RABBITMQ_MANAGEMENT_URL:-http://guest:guest@127.0.0.1:15672}

ensure_rabbitmq noinstall
ensure_postgres noinstall

cleanup() {
  scripts/system.sh down >/dev/null 2>&1 || true
  for db in "$USERS_DB" "$ORDERS_DB"; do
    psql "$PG_URL/postgres" -qc "drop database if exists $db with (force)" >/dev/null 2>&1 || true
  done
  for q in users.rpc orders.rpc users.events orders.events users.events.dlq orders.events.dlq; do
    curl -fsS -X DELETE "$MGMT/api/queues/%2f/$BUS_PREFIX.$q" >/dev/null 2>&1 || true
  done
  for x in rpc events; do
    curl -fsS -X DELETE "$MGMT/api/exchanges/%2f/$BUS_PREFIX.$x" >/dev/null 2>&1 || true
  done
}
trap cleanup EXIT
cleanup

echo "== machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "== RabbitMQ $(rabbitmqctl version 2>/dev/null || echo '?'), $(psql --version | head -1)"
scripts/system.sh up
cargo build --release --locked -q -p system-tests --bin shop-bench
URL="http://127.0.0.1:$GATEWAY_PORT"
./target/release/shop-bench http --url "$URL" --concurrency "${BENCH_CONCURRENCY:-32}" \
  --secs "${BENCH_SECS:-6}" --warmup "${BENCH_WARMUP_SECS:-2}" --rounds "${BENCH_ROUNDS:-3}"
if [ -n "${BENCH_SOAK_SECS:-}" ]; then
  echo
  ./target/release/shop-bench soak --url "$URL" --secs "$BENCH_SOAK_SECS" --rate "${BENCH_SOAK_RATE:-100}"
fi
