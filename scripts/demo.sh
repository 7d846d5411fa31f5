#!/usr/bin/env bash
# The main job: start `tessera serve` on its embedded defaults (SQLite, local
# blobs, filesystem queue, rapidocr), submit the bundled sample documents over
# REST, wait, and print a per-document summary and where the results are.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate

export TESSERA_HOME="${TESSERA_HOME:-$PWD/.tessera}"
mkdir -p "$TESSERA_HOME"
PORT=${TESSERA_DEMO_PORT:-$(python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}
SERVER="http://127.0.0.1:$PORT"
OUT=${TESSERA_DEMO_OUT:-$PWD/demo-results}
# What to submit (files or folders, space-separated); CI runs the short form on one sample.
read -r -a DOCUMENTS <<< "${TESSERA_DEMO_SAMPLES:-samples/}"

echo "demo: starting tessera serve on $SERVER (state in $TESSERA_HOME, log in $TESSERA_HOME/serve.log)"
tessera serve --port "$PORT" >>"$TESSERA_HOME/serve.log" 2>&1 &
SERVER_PID=$!
trap 'kill $SERVER_PID 2>/dev/null; wait $SERVER_PID 2>/dev/null || true' EXIT

python - "$SERVER" <<'PY'
import sys, time, httpx
deadline = time.monotonic() + 90
while time.monotonic() < deadline:
    try:
        if httpx.get(sys.argv[1] + "/readyz", timeout=2).status_code == 200:
            sys.exit(0)
    except httpx.HTTPError:
        pass
    time.sleep(0.5)
sys.exit("demo: the server did not become ready; see $TESSERA_HOME/serve.log")
PY

KEY=$(tessera api-key create --tenant demo 2>/dev/null | tail -n 1)
echo "demo: submitting ${DOCUMENTS[*]}"
tessera submit "${DOCUMENTS[@]}" --server "$SERVER" --api-key "$KEY" --out "$OUT"
