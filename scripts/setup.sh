#!/usr/bin/env bash
# Install everything Tessera needs on a fresh Debian 12 machine: system packages
# (poppler, PostgreSQL and Redis servers for the tests, fonts) and a virtualenv
# with the pinned Python dependencies. Safe to run again: it skips what is done.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(poppler-utils poppler-data postgresql redis-server fonts-wqy-microhei
              fonts-dejavu-core docker-compose python3-venv)
# Headless Chromium and its driver for the dashboard's browser tests (tests/browser)
APT_PACKAGES+=(chromium chromium-driver)
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
# kubectl's built-in kustomize renders infra/k8s in the tests. A kubectl already installed is
# kept (Debian's kubernetes-client would clash with it); else Debian's (kubectl 1.20).
command -v kubectl >/dev/null || APT_PACKAGES+=(kubernetes-client)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing system packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PYTHON=${PYTHON:-python3}
stamp=.venv/.tessera-installed
want=$(cat pyproject.toml requirements-no-deps.txt | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setup: creating .venv and installing pinned Python dependencies"
  [ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
  # torch==2.13.0 (the CPU wheel) is pinned in the internvl extra; see README.
  .venv/bin/python -m pip install -q -e ".[internvl,test]"
  # Packages whose declared dependencies would break others: see the file's comment.
  .venv/bin/python -m pip install -q --no-deps -r requirements-no-deps.txt
  echo "$want" > "$stamp"
fi
