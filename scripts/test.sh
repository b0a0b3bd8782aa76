#!/usr/bin/env bash
# Runs the whole test suite against a real PostgreSQL and a real Redis that it starts itself.
# Extra arguments go to `deno test` (e.g. tests/e2e_test.ts).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec scripts/bootstrap.sh --need-redis --need-pgtap --need-pgbouncer -- deno task test "$@"
