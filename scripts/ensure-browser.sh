#!/usr/bin/env bash
# Make sure Debian's chromium and chromedriver are present for the browser tests.
# Installs them with apt-get when running as root; otherwise says what to do.
set -euo pipefail
if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 \
   && { [ -d /usr/share/fonts/truetype/nanum ] || [ "$(id -u)" != "0" ]; }; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian's chromium and chromium-driver for the browser tests..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends chromium chromium-driver fonts-nanum >/dev/null
  exit 0
fi
echo "note: chromium/chromedriver not found; the browser tests will be skipped" \
     "(Debian: sudo apt-get install chromium chromium-driver)" >&2
if [ "${CI:-}" = "true" ]; then
  echo "CI=true: the browser tests are required" >&2
  exit 1
fi
