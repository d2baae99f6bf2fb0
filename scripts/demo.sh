#!/usr/bin/env bash
# The README's demo command: install the locked environment and run `weftline demo` on embedded defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v uv >/dev/null 2>&1 || python3 -m pip install --quiet uv
uv sync --frozen --quiet
exec uv run --frozen weftline demo "$@"
