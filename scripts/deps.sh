# Shared by .ci/run and `make up`: find, start or (CI only) install the servers we need.
# Functions only; source it. Messages go to stderr.

log() { echo "deps: $*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    log "need root for: $*"; return 1; fi
}

apt_install() {
  command -v apt-get >/dev/null || { log "cannot install $* (no apt-get): please install it"; return 1; }
  if [ -z "${_APT_UPDATED:-}" ]; then as_root apt-get update -qq; _APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() { # port seconds
  for _ in $(seq 1 "$2"); do port_open "$1" && return 0; sleep 1; done
  return 1
}

ensure_toolchain() {
  command -v cargo >/dev/null || { log "cargo is missing: install Rust with rustup (https://rustup.rs)"; return 1; }
}

# PostgreSQL on 127.0.0.1:5432, user postgres reachable without a password from localhost.
ensure_postgres() {
  local install="${1:-install}"
  if ! port_open 5432; then
    if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
      [ "$install" = install ] || { log "PostgreSQL is not installed: sudo apt-get install postgresql (or set DATABASE_URLs to a server you have)"; return 1; }
      log "installing PostgreSQL"; apt_install postgresql
    fi
    log "starting PostgreSQL"
    as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main start || true
    wait_port 5432 30 || { log "PostgreSQL did not start (see /var/log/postgresql/)"; return 1; }
  fi
  if ! psql -h 127.0.0.1 -U postgres -Atc 'select 1' >/dev/null 2>&1; then
    [ "$install" = install ] || { log "cannot log in to PostgreSQL as postgres from 127.0.0.1 without a password: allow it (pg_hba.conf 'trust') or set DATABASE_URLs"; return 1; }
    log "allowing password-less local TCP logins (trust) for tests"
    local hba; hba=$(ls /etc/postgresql/*/main/pg_hba.conf | sort -V | tail -1)
    as_root sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
    as_root pg_ctlcluster --skip-systemctl-redirect "$(basename "$(dirname "$(dirname "$hba")")")" main reload
    sleep 1
  fi
}

# RabbitMQ on 127.0.0.1:5672 (guest/guest) with the management API on :15672.
ensure_rabbitmq() {
  local install="${1:-install}"
  if ! port_open 5672; then
    if ! command -v rabbitmq-server >/dev/null; then
      [ "$install" = install ] || { log "RabbitMQ is not installed: sudo apt-get install rabbitmq-server (or set AMQP_URL to a broker you have)"; return 1; }
      log "installing RabbitMQ"; apt_install rabbitmq-server
    fi
    log "starting RabbitMQ"
    as_root rabbitmq-server -detached || true
    wait_port 5672 90 || { log "RabbitMQ did not start (see /var/log/rabbitmq/)"; return 1; }
  fi
  if ! port_open 15672; then
    log "enabling the RabbitMQ management plugin (UI and HTTP API on :15672)"
    as_root rabbitmq-plugins enable rabbitmq_management >/dev/null
    wait_port 15672 60 || { log "the management plugin did not come up"; return 1; }
  fi
}

# Something that validates docker-compose.yml without a Docker engine.
ensure_compose_validator() {
  if docker compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null; then return 0; fi
  log "installing docker-compose (config validation only)"
  # Debian's package: PyPI's docker-compose 1.x no longer builds (PyYAML 5 vs Cython 3).
  apt_install docker-compose || { log "cannot install docker-compose"; return 1; }
}

# schemathesis (the OpenAPI conformance test, system-tests/tests/openapi_conformance.rs):
# the pinned version in a venv under .run/, installed only when absent.
SCHEMATHESIS_VERSION=4.32.5
ensure_schemathesis() {
  local venv=.run/schemathesis
  if [ "$("$venv/bin/schemathesis" --version 2>/dev/null | grep -o '[0-9][0-9.]*$')" = "$SCHEMATHESIS_VERSION" ]; then return 0; fi
  command -v python3 >/dev/null || { log "python3 is missing: sudo apt-get install python3 python3-venv"; return 1; }
  python3 -c 'import venv, ensurepip' 2>/dev/null || apt_install python3-venv
  log "installing schemathesis $SCHEMATHESIS_VERSION into $venv"
  python3 -m venv "$venv" && "$venv/bin/pip" install -q "schemathesis==$SCHEMATHESIS_VERSION" \
    || { log "cannot install schemathesis"; return 1; }
}
