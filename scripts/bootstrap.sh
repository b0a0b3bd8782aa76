#!/usr/bin/env bash
# Installs what the project needs on a fresh machine, then runs the command given as arguments.
#   - Deno and the Supabase CLI, pinned to exact versions in tools/package.json, from npm;
#   - PostgreSQL server binaries and redis-server, from Debian's packages, when missing and
#     when running as root (otherwise it says what to install);
#   - with --need-pgtap, pgTAP and pg_prove for the database tests (supabase/tests);
#   - with --need-pgbouncer, PgBouncer (the transaction pooler the functions are tested behind).
# Usage: scripts/bootstrap.sh [--need-redis] [--need-pgtap] [--need-pgbouncer] -- <command...>
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

need_redis=0
need_pgtap=0
need_pgbouncer=0
while [[ $# -gt 0 && "$1" != "--" ]]; do
  case "$1" in
    --need-redis) need_redis=1 ;;
    --need-pgtap) need_pgtap=1 ;;
    --need-pgbouncer) need_pgbouncer=1 ;;
    *) echo "bootstrap: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
[[ "${1:-}" == "--" ]] && shift

if [[ ! -x tools/node_modules/.bin/deno ]]; then
  # Exact versions are pinned in tools/package.json. No lock file: npm writes only the current
  # platform's binary package into one, and `npm ci` then refuses it on any machine.
  echo "bootstrap: installing Deno and the Supabase CLI (tools/package.json)" >&2
  npm install --prefix tools --no-audit --no-fund --loglevel=error >&2
fi
export PATH="$ROOT/tools/node_modules/.bin:$PATH"

missing=()
pg_server_found() {
  [[ -n "${PG_BIN:-}" && -x "${PG_BIN}/postgres" ]] && return 0
  ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 && return 0
  command -v pg_config >/dev/null 2>&1 && [[ -x "$(pg_config --bindir)/postgres" ]]
}
if ! pg_server_found; then
  missing+=(postgresql)
fi
# pg_cron runs the idempotency cleanup, as on Supabase (loaded by scripts/lib/postgres_server.ts).
if ! ls /usr/lib/postgresql/*/lib/pg_cron.so >/dev/null 2>&1; then
  pg_major="$(ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -1 || true)"
  missing+=("postgresql-${pg_major:-15}-cron")
fi
if [[ "$need_redis" == 1 ]] && ! command -v redis-server >/dev/null 2>&1; then
  missing+=(redis-server)
fi
if [[ "$need_pgtap" == 1 ]]; then
  pg_major="$(ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -1 || true)"
  if ! ls /usr/share/postgresql/*/extension/pgtap.control >/dev/null 2>&1; then
    missing+=("postgresql-${pg_major:-15}-pgtap")
  fi
  command -v pg_prove >/dev/null 2>&1 || missing+=(libtap-parser-sourcehandler-pgtap-perl)
fi
if [[ "$need_pgbouncer" == 1 ]] && [[ ! -x /usr/sbin/pgbouncer ]] &&
  ! command -v pgbouncer >/dev/null 2>&1; then
  missing+=(pgbouncer)
fi
if [[ ${#missing[@]} -gt 0 ]]; then
  if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "bootstrap: installing ${missing[*]} (apt-get)" >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  else
    echo "bootstrap: please install: ${missing[*]} (e.g. sudo apt-get install ${missing[*]})" >&2
    exit 1
  fi
fi

exec "$@"
