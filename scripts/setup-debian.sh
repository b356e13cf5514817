#!/usr/bin/env bash
# Installs what building, the demo, the tests and the benchmarks need on Debian 12, once.
# Idempotent: packages already present are not touched, so repeated runs cost a dpkg query.
set -euo pipefail

packages=(
  build-essential cmake pkg-config clang-format valgrind
  clang libclang-rt-dev   # libFuzzer + sanitizer runtimes for tests/fuzz (TD_FUZZ)
  libhiredis-dev libcurl4-openssl-dev libcjson-dev libyaml-dev libssl-dev libcmocka-dev
  librdkafka-dev librabbitmq-dev libmicrohttpd-dev
  redis-server nginx-light wrk
  python3 python3-redis python3-yaml python3-jsonschema
  python3-botocore   # the independent SigV4 verifier of the Lambda tests
  openjdk-17-jdk-headless maven kcat   # the Kafka broker of the tests (jars from Maven Central)
  rabbitmq-server amqp-tools python3-pika   # the RabbitMQ node of the tests and independent clients
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
  # rabbitmq-server's postinst would start a system node (and an epmd on 4369); the tests run
  # nodes of their own, so keep package scripts from starting services during this install.
  policy_rc=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    policy_rc=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy_rc" >/dev/null
    $SUDO chmod 755 "$policy_rc"
  fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  [ -z "$policy_rc" ] || $SUDO rm -f "$policy_rc"
fi
# A system RabbitMQ node started anyway (an earlier install) is left alone: test nodes use
# their own node names, ports and epmd port (tests/integration/rabbitmq_fixture.py).
# The packaged redis-server and nginx start system services; our scripts run their own
# instances on loopback ports of their own, so the system ones are left as they are.
