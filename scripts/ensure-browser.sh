#!/usr/bin/env bash
# Makes sure Debian's chromium is installed for the browser tests (test/browser/, driven by
# playwright-core, which downloads no browser of its own), installing it with apt-get where it is
# missing (as root, or through sudo). Fails when it cannot: under CI=true a missing browser must
# fail the run, not skip its tests. CHROMIUM_PATH overrides /usr/bin/chromium.
set -uo pipefail

CHROMIUM=${CHROMIUM_PATH:-/usr/bin/chromium}

have() { command -v "$1" >/dev/null 2>&1; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif have sudo; then sudo -n "$@"; else return 1; fi
}

if [ -x "$CHROMIUM" ]; then
  echo "browser: chromium is $CHROMIUM"
  exit 0
fi

echo "browser: chromium is missing at $CHROMIUM; installing Debian's chromium package"
if ! have apt-get; then
  echo "browser: apt-get is not available: install chromium at $CHROMIUM" >&2
  exit 1
fi
as_root apt-get update -qq >/dev/null 2>&1 &&
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends chromium \
    >/dev/null 2>&1
if [ -x "$CHROMIUM" ]; then
  echo "browser: chromium is $CHROMIUM"
else
  echo "browser: could not install chromium at $CHROMIUM" >&2
  exit 1
fi
