#!/usr/bin/env bash
# Starts PostgreSQL and NATS (JetStream) on this machine when they are down, and waits for them.
# Used by `make run`, `make test` and `.ci/run`. With DATABASE_URL / NATS_URL pointing elsewhere,
# nothing is started: those servers are used as they are.
set -euo pipefail

PG_HOST=127.0.0.1
PG_PORT=5432
NATS_PORT=4222

pg_up() { pg_isready -q -h "$PG_HOST" -p "$PG_PORT" 2>/dev/null; }
nats_up() { (exec 3<>"/dev/tcp/127.0.0.1/$NATS_PORT") 2>/dev/null; }

if [ -z "${DATABASE_URL:-}" ] || [[ "${DATABASE_URL}" == *"127.0.0.1"* || "${DATABASE_URL}" == *"localhost"* ]]; then
  if ! pg_up; then
    echo "services: starting PostgreSQL"
    if ! command -v pg_ctlcluster >/dev/null 2>&1; then
      echo "services: PostgreSQL is not installed; installing it (Debian packages)"
      apt-get update -qq && apt-get install -y -qq postgresql >/dev/null
    fi
    version=$(ls /etc/postgresql | sort -V | tail -n 1)
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    for _ in $(seq 1 60); do pg_up && break; sleep 0.5; done
    pg_up || { echo "services: PostgreSQL did not come up" >&2; exit 1; }
  fi
fi

if [ -z "${NATS_URL:-}" ] || [[ "${NATS_URL}" == *"127.0.0.1"* || "${NATS_URL}" == *"localhost"* ]]; then
  if ! nats_up; then
    echo "services: starting NATS with JetStream"
    if [ ! -x /usr/sbin/nats-server ] && ! command -v nats-server >/dev/null 2>&1; then
      echo "services: nats-server is not installed; installing it (Debian packages)"
      apt-get update -qq && apt-get install -y -qq nats-server >/dev/null
    fi
    bin=/usr/sbin/nats-server
    [ -x "$bin" ] || bin=$(command -v nats-server)
    mkdir -p /var/lib/nats-server
    start-stop-daemon --start --oknodo --background --exec "$bin" -- \
      -a 127.0.0.1 -p "$NATS_PORT" -js -sd /var/lib/nats-server -l /var/log/nats-server.log
    for _ in $(seq 1 60); do nats_up && break; sleep 0.5; done
    nats_up || { echo "services: NATS did not come up" >&2; exit 1; }
  fi
fi
echo "services: PostgreSQL and NATS are up"
