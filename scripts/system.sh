#!/usr/bin/env bash
# `make up|down|logs|ps`: the whole system, with Docker Compose when a Docker engine
# answers, natively otherwise (local RabbitMQ + PostgreSQL, three processes).
#
# Native mode keeps everything under $RUN_DIR (default .run/): pids/, logs/, keys/.
# `down` stops only the processes whose pid files are there.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

# An optional .env (KEY=value lines) is read first; the environment wins over it.
if [ -f .env ]; then
  while IFS='=' read -r key value; do
    [[ "$key" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || continue
    [ -n "${!key+x}" ] || export "$key=${value%\"}"
  done < <(grep -v '^\s*#' .env | sed 's/^export //; s/="/=/')
fi

RUN_DIR=${RUN_DIR:-$ROOT/.run}
case "$RUN_DIR" in /*) ;; *) RUN_DIR=$ROOT/$RUN_DIR ;; esac
GATEWAY_PORT=${GATEWAY_PORT:-8080}
BUILD_PROFILE=${BUILD_PROFILE:-release}
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432}
USERS_DB=${USERS_DB:-users}
ORDERS_DB=${ORDERS_DB:-orders}
AMQP_URL=${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}
READY_TIMEOUT=${READY_TIMEOUT:-90}
SERVICES=(user-svc order-svc gateway)
COMPOSE=(docker compose -p "${COMPOSE_PROJECT_NAME:-shop}")

use_compose() {
  [ "${SHOP_NATIVE:-}" != 1 ] && command -v docker >/dev/null && docker info >/dev/null 2>&1 \
    && docker compose version >/dev/null 2>&1
}

say() { echo "==> $*"; }

pid_of() { local f="$RUN_DIR/pids/$1.pid"; [ -f "$f" ] && cat "$f"; }
alive() { local p; p=$(pid_of "$1") && [ -n "$p" ] && kill -0 "$p" 2>/dev/null; }

banner() {
  cat <<TXT

The shop is up.
  Gateway       http://localhost:$GATEWAY_PORT     (API docs: http://localhost:$GATEWAY_PORT/docs)
  Readiness     http://localhost:$GATEWAY_PORT/health/ready
  RabbitMQ UI   http://localhost:${RABBITMQ_UI_PORT:-15672}    (login: $1)
  Admin user    ${ADMIN_EMAIL:-admin@example.com} / ${ADMIN_PASSWORD:-admin-password}
  Logs          make logs        Status  make ps        Stop  make down
TXT
}

wait_ready() {
  local url="http://127.0.0.1:$GATEWAY_PORT/health/ready"
  for _ in $(seq 1 "$READY_TIMEOUT"); do
    if curl -fsS -o /dev/null "$url" 2>/dev/null; then return 0; fi
    for s in "${SERVICES[@]}"; do
      if ! alive "$s"; then echo "$s exited during start-up; last log lines:" >&2; tail -n 30 "$RUN_DIR/logs/$s.log" >&2; return 1; fi
    done
    sleep 1
  done
  echo "not ready after ${READY_TIMEOUT}s ($url):" >&2
  curl -sS "$url" >&2 || true
  for s in "${SERVICES[@]}"; do echo "--- $s" >&2; tail -n 15 "$RUN_DIR/logs/$s.log" >&2; done
  return 1
}

create_db() {
  local name=$1
  if ! psql "$PG_URL/postgres" -Atc "select 1 from pg_database where datname = '$name'" | grep -q 1; then
    say "creating database $name"
    psql "$PG_URL/postgres" -qc "create database \"$name\""
  fi
}

native_up() {
  source scripts/deps.sh
  if [ "$(ls "$RUN_DIR"/pids/*.pid 2>/dev/null | wc -l)" -gt 0 ]; then
    local all=1; for s in "${SERVICES[@]}"; do alive "$s" || all=0; done
    if [ $all = 1 ]; then say "already running (make ps); make down first to restart"; banner "guest / guest"; return 0; fi
    say "cleaning up a previous partial start"; native_down
  fi
  say "checking RabbitMQ and PostgreSQL"
  ensure_rabbitmq noinstall
  ensure_postgres noinstall
  create_db "$USERS_DB"
  create_db "$ORDERS_DB"

  local flag=--release dir=release
  if [ "$BUILD_PROFILE" = dev ]; then flag=; dir=debug; fi
  say "building ($BUILD_PROFILE)"
  # The same command as `make test` uses, so the binaries are built once.
  cargo build $flag --locked --workspace --bins
  local bin="${CARGO_TARGET_DIR:-$ROOT/target}/$dir"

  mkdir -p "$RUN_DIR/pids" "$RUN_DIR/logs" "$RUN_DIR/keys"
  export AMQP_URL APP_ENV=${APP_ENV:-development} LOG_FORMAT=${LOG_FORMAT:-pretty}
  export ADMIN_EMAIL=${ADMIN_EMAIL:-admin@example.com} ADMIN_PASSWORD=${ADMIN_PASSWORD:-admin-password}
  # Per-service broker accounts (least privilege, see deploy/rabbitmq) when given.
  start_one user-svc "$bin" AMQP_URL="${USER_SVC_AMQP_URL:-$AMQP_URL}" \
    DATABASE_URL="${USERS_DATABASE_URL:-$PG_URL/$USERS_DB}" \
    JWT_DEV_KEY_FILE="${JWT_DEV_KEY_FILE:-$RUN_DIR/keys/user-svc-ed25519.pem}"
  start_one order-svc "$bin" AMQP_URL="${ORDER_SVC_AMQP_URL:-$AMQP_URL}" \
    DATABASE_URL="${ORDERS_DATABASE_URL:-$PG_URL/$ORDERS_DB}" \
    CATALOG_SEED="${CATALOG_SEED-$ROOT/deploy/catalog/demo.json}"
  start_one gateway "$bin" AMQP_URL="${GATEWAY_AMQP_URL:-$AMQP_URL}" \
    GATEWAY_ADDR="${GATEWAY_ADDR:-0.0.0.0:$GATEWAY_PORT}"
  say "waiting for http://127.0.0.1:$GATEWAY_PORT/health/ready"
  if ! wait_ready; then native_down; return 1; fi
  banner "guest / guest"
}

start_one() {
  local name=$1 bin=$2; shift 2
  # setsid: the process outlives this shell and `make`, and gets its own group.
  env "$@" setsid "$bin/$name" >>"$RUN_DIR/logs/$name.log" 2>&1 < /dev/null &
  echo $! > "$RUN_DIR/pids/$name.pid"
  say "started $name (pid $!, log $RUN_DIR/logs/$name.log)"
}

native_down() {
  local stopped=0
  # Gateway first (drains HTTP), then the services (answer what they hold).
  for s in gateway order-svc user-svc; do
    local p; p=$(pid_of "$s") || continue
    if [ -n "$p" ] && kill -0 "$p" 2>/dev/null; then
      kill -TERM "$p" 2>/dev/null || true
      for _ in $(seq 1 150); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
      if kill -0 "$p" 2>/dev/null; then echo "$s did not stop in 15 s: killing" >&2; kill -KILL "$p" 2>/dev/null || true; fi
      say "stopped $s (pid $p)"; stopped=1
    fi
    rm -f "$RUN_DIR/pids/$s.pid"
  done
  [ $stopped = 1 ] || say "nothing running (from $RUN_DIR)"
}

native_status() {
  for s in "${SERVICES[@]}"; do
    if alive "$s"; then printf '%-10s running  pid %s\n' "$s" "$(pid_of "$s")"; else printf '%-10s stopped\n' "$s"; fi
  done
  if curl -fsS "http://127.0.0.1:$GATEWAY_PORT/health/ready" 2>/dev/null; then echo; else echo "gateway not ready on :$GATEWAY_PORT"; fi
}

case "${1:-}" in
  up)
    if use_compose; then
      say "Docker engine found: docker compose up"
      "${COMPOSE[@]}" up -d --build --wait
      banner "admin / ${RABBITMQ_ADMIN_PASSWORD:-admin-dev-password}"
    else
      say "no Docker engine: running natively (set SHOP_NATIVE=1 to force this)"
      if [[ "${COMPOSE_PROFILES:-}" == *observability* ]]; then
        echo "note: the observability stack (Jaeger, Prometheus, Grafana) needs a Docker engine; starting without it." >&2
        [ "${OTEL_EXPORTER_OTLP_ENDPOINT:-}" = http://jaeger:4318 ] && unset OTEL_EXPORTER_OTLP_ENDPOINT
      fi
      native_up
    fi ;;
  down)
    if use_compose && [ -n "$("${COMPOSE[@]}" ps -q 2>/dev/null)" ]; then "${COMPOSE[@]}" down; else native_down; fi ;;
  logs)
    if use_compose && [ -n "$("${COMPOSE[@]}" ps -q 2>/dev/null)" ]; then "${COMPOSE[@]}" logs -f; else
      ls "$RUN_DIR"/logs/*.log >/dev/null 2>&1 || { echo "no logs in $RUN_DIR/logs (make up first)"; exit 1; }
      tail -n 50 -F "$RUN_DIR"/logs/*.log; fi ;;
  ps|status)
    if use_compose && [ -n "$("${COMPOSE[@]}" ps -q 2>/dev/null)" ]; then "${COMPOSE[@]}" ps; else native_status; fi ;;
  *) echo "usage: $0 up|down|logs|ps" >&2; exit 2 ;;
esac
