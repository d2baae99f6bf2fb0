#!/usr/bin/env bash
# The test command of the README: install the locked environment, start local services, run every test
# (pytest, which also runs the spec test cases, the doctests and `weftline validate` / `weftline test`).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v uv >/dev/null 2>&1 || python3 -m pip install --quiet uv
uv sync --frozen --quiet
bash scripts/services.sh
exec uv run --frozen pytest "$@"
