#!/usr/bin/env bash
# Installs what building, the demo, the tests and the benchmarks need on Debian 12, once.
# Idempotent: packages already present are not touched, so repeated runs cost a dpkg query.
#   scripts/setup-debian.sh          everything (the test suite: Kafka, RabbitMQ, fuzzing, k8s)
#   scripts/setup-debian.sh --core   only what building and the demo need
set -euo pipefail

core=(
  build-essential cmake pkg-config
  libhiredis-dev libcurl4-openssl-dev libcjson-dev libyaml-dev libssl-dev libcmocka-dev
  librdkafka-dev librabbitmq-dev libmicrohttpd-dev libgnutls28-dev
  redis-server python3 python3-redis
)
if [ "${1:-}" = "--core" ]; then
  packages=("${core[@]}")
else
  packages=("${core[@]}"
  clang-format valgrind
  clang libclang-rt-dev   # libFuzzer + sanitizer runtimes for tests/fuzz (TD_FUZZ)
  nginx-light wrk
  python3-yaml python3-jsonschema
  python3-prometheus-client   # the Prometheus text-format parser of test_metrics_exposition.py
  python3-venv   # the venv of kubernetes-validate (tests/integration/test_k8s_manifests.py)
  python3-botocore   # the independent SigV4 verifier of the Lambda tests
  python3-cryptography   # JWTs signed by tests/integration/test_ingress_jwt.py
  openjdk-17-jdk-headless maven kcat   # the Kafka broker of the tests (jars from Maven Central)
  rabbitmq-server amqp-tools python3-pika   # the RabbitMQ node of the tests and independent clients
  groff-base man-db zsh   # test_cli.py: renders the man page, parses the zsh completion
  )
fi

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

[ "${1:-}" != "--core" ] || exit 0

# tests/integration/test_k8s_manifests.py validates deploy/kubernetes offline with
# kubernetes-validate (PyPI; ships the Kubernetes JSON schemas). Debian's python3 is externally
# managed and its jsonschema too old for it, so it lives in a venv of its own.
td_cache="${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/triggerd"
k8s_venv="${TD_K8S_VENV:-$td_cache/k8s-venv}"
k8s_validate_version=1.37.0
if ! "$k8s_venv/bin/python" -c "import importlib.metadata as m, sys
sys.exit(m.version('kubernetes-validate') != '$k8s_validate_version')" 2>/dev/null; then
  echo "setup: installing kubernetes-validate $k8s_validate_version in $k8s_venv"
  /usr/bin/python3 -m venv "$k8s_venv"
  "$k8s_venv/bin/pip" install -q --disable-pip-version-check "kubernetes-validate==$k8s_validate_version"
fi
# tests/integration/test_tracing*.py decode the OTLP export with the official OpenTelemetry protocol
# definitions (opentelemetry-proto from PyPI, with protobuf), in a venv of their own as above.
otel_venv="${TD_OTEL_VENV:-$td_cache/otel-venv}"
otel_proto_version=1.27.0
if ! "$otel_venv/bin/python" -c "import importlib.metadata as m, sys
sys.exit(m.version('opentelemetry-proto') != '$otel_proto_version')" 2>/dev/null; then
  echo "setup: installing opentelemetry-proto $otel_proto_version in $otel_venv"
  /usr/bin/python3 -m venv "$otel_venv"
  "$otel_venv/bin/pip" install -q --disable-pip-version-check "opentelemetry-proto==$otel_proto_version"
fi
# kustomize (a Go module, built from the Go module proxy) lets the same test render
# deploy/kubernetes with `kustomize build`; without a Go toolchain that part is skipped.
kustomize_version=v5.7.1
go_bin="$(command -v go || true)"
[ -n "$go_bin" ] || [ ! -x /usr/local/go/bin/go ] || go_bin=/usr/local/go/bin/go
if [ -n "$go_bin" ] && [ "$("$td_cache/bin/kustomize" version 2>/dev/null)" != "$kustomize_version" ]; then
  echo "setup: building kustomize $kustomize_version into $td_cache/bin"
  GOBIN="$td_cache/bin" "$go_bin" install "sigs.k8s.io/kustomize/kustomize/v5@$kustomize_version" ||
    echo "setup: kustomize not built; test_k8s_manifests.py skips its kustomize build part"
fi
