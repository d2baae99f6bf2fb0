#!/usr/bin/env bash
# The README's demo command: install the locked environment and run `weftline demo` on embedded defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v uv >/dev/null 2>&1 || python3 -m pip install --quiet uv
uv sync --frozen --quiet
# the IoT part of the demo starts a local Mosquitto on a free loopback port (the binary, not a service)
if ! command -v mosquitto >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  (apt-get install -y -qq mosquitto >/dev/null 2>&1 || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq mosquitto >/dev/null 2>&1; }) || true
fi
exec uv run --frozen weftline demo "$@"
