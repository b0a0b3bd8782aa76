#!/usr/bin/env bash
# Runs the functions locally: PostgreSQL, migrations, and every function at
# http://127.0.0.1:${PORT:-54321}/functions/v1/<name>. Extra arguments go to scripts/dev.ts;
# with --with-redis, redis-server is installed first when missing; with --with-pooler, PgBouncer.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
need=()
for arg in "$@"; do
  if [[ "$arg" == --with-redis ]]; then need+=(--need-redis); fi
  if [[ "$arg" == --with-pooler ]]; then need+=(--need-pgbouncer); fi
done
# exec all the way down: a signal sent to this process reaches `deno task dev`, which passes it on.
exec scripts/bootstrap.sh ${need[@]+"${need[@]}"} -- deno task dev "$@"
