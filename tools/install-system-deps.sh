#!/usr/bin/env bash
# Installs the Debian packages the tests need when they are missing:
#   postgresql  - a private cluster for the export test (initdb, pg_ctl, postgres)
#   chromium    - headless rendering of the HTML reports
#   openssl     - a test CA and server certificate for the PostgreSQL TLS test
#   npm         - installs asl-validator for `make infra-check` (pulls in nodejs)
# Runs apt-get only when something is missing; needs root (or sudo) for that.
set -euo pipefail

missing=()
pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }
if [ -z "$(pg_bin)" ] || [ ! -x "$(pg_bin)/initdb" ]; then missing+=(postgresql); fi
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
  missing+=(chromium)
fi
if ! command -v openssl >/dev/null 2>&1; then missing+=(openssl); fi
if ! command -v npm >/dev/null 2>&1; then missing+=(npm); fi
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "installing Debian packages: ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
