#!/usr/bin/env bash
# Set up (if needed) and run the whole test suite. The suite starts its own
# PostgreSQL, Redis and S3 (moto) servers and real Tessera processes.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest "$@"
