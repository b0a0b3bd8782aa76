#!/usr/bin/env bash
# Runs the functions locally: PostgreSQL, migrations, and every function at
# http://127.0.0.1:${PORT:-54321}/functions/v1/<name>. Extra arguments go to scripts/dev.ts.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec scripts/bootstrap.sh -- deno task dev "$@"
