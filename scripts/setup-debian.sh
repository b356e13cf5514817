#!/usr/bin/env bash
# Installs what building, the demo, the tests and the benchmarks need on Debian 12, once.
# Idempotent: packages already present are not touched, so repeated runs cost a dpkg query.
set -euo pipefail

packages=(
  build-essential cmake pkg-config clang-format valgrind
  libhiredis-dev libcurl4-openssl-dev libcjson-dev libyaml-dev libssl-dev libcmocka-dev
  librdkafka-dev librabbitmq-dev libmicrohttpd-dev
  redis-server nginx-light wrk
  python3 python3-redis python3-yaml python3-jsonschema
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The packaged redis-server and nginx start system services; our scripts run their own
# instances on loopback ports of their own, so the system ones are left as they are.
