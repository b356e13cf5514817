#!/usr/bin/env bash
# demo.sh - triggerd end to end in one command, on a fresh Debian 12 machine:
#   Debian packages (scripts/setup-debian.sh) -> build -> redis-server + an example function
#   -> triggerd -> events published to a Redis stream arrive at the function -> an event the
#   function rejects is read back, decoded, from the dead-letter stream.
# Everything runs on free loopback ports in a temp dir and is stopped at exit (also on failure
# or Ctrl-C). Exits non-zero when an event did not arrive or the dead letter is missing.
#
#   scripts/demo.sh            # KEEP=1 keeps the temp dir (logs) for a look afterwards
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY=/usr/bin/python3 # Debian's python: python3-redis is installed there
BUILD="$ROOT/build"
TRIGGERD="$BUILD/triggerd"
TIMEOUT_S=15 # for each wait below; a healthy run needs well under a second for each

if [ -t 1 ]; then
  B=$'\e[1m' G=$'\e[32m' R=$'\e[31m' D=$'\e[2m' N=$'\e[0m'
else
  B="" G="" R="" D="" N=""
fi
step() { printf '%s==>%s %s\n' "$B" "$N" "$*"; }
info() { printf '    %s\n' "$*"; }
fail() {
  printf '%sdemo FAILED:%s %s\n' "$R" "$N" "$*" >&2
  exit 1
}
indent() { sed 's/^/    /'; }

TMP=""
pids=() # started by us, stopped in reverse order at exit
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  local i pid
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    pid=${pids[i]}
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
  if [ -n "$TMP" ] && [ -d "$TMP" ]; then
    if [ "$rc" -ne 0 ] || [ "${KEEP:-0}" = 1 ]; then
      printf '%slogs kept in %s%s\n' "$D" "$TMP" "$N" >&2
    else
      rm -rf "$TMP"
    fi
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# wait_for SECONDS COMMAND...: polls COMMAND every 50 ms until it succeeds (0), gives up (its
# status 2: no point waiting) or SECONDS pass (1).
wait_for() {
  local deadline=$((SECONDS + $1)) rc
  shift
  while true; do
    rc=0
    "$@" || rc=$?
    [ "$rc" -ne 0 ] || return 0
    [ "$rc" -ne 2 ] || return 2
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.05
  done
}
alive() { kill -0 "$1" 2>/dev/null; }
free_port() {
  "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# ---- 1. packages and build ---------------------------------------------------------------
step "checking Debian packages (scripts/setup-debian.sh)"
"$ROOT/scripts/setup-debian.sh" --core
mkdir -p "$BUILD"
if [ ! -f "$BUILD/CMakeCache.txt" ]; then
  step "configuring a Release build in build/"
  cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >"$BUILD/demo-configure.log" 2>&1 ||
    { cat "$BUILD/demo-configure.log" >&2; fail "cmake configure failed"; }
fi
build_type=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$BUILD/CMakeCache.txt")
step "building build/triggerd (${build_type:-default} build; quick when up to date)"
cmake --build "$BUILD" -j"$(nproc)" >"$BUILD/demo-build.log" 2>&1 ||
  { tail -40 "$BUILD/demo-build.log" >&2; fail "build failed (full log: build/demo-build.log)"; }
[ -x "$TRIGGERD" ] || fail "$TRIGGERD was not built"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/triggerd-demo.XXXXXX")

# ---- 2. redis-server and the example function ----------------------------------------------
REDIS_PORT=$(free_port)
redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$TMP" --save '' --appendonly no \
  --daemonize no --logfile "$TMP/redis.log" &
pids+=($!)
redis_pid=$!
rcli() { redis-cli -p "$REDIS_PORT" "$@"; }
redis_up() { alive "$redis_pid" && [ "$(rcli ping 2>/dev/null)" = PONG ]; }
wait_for "$TIMEOUT_S" redis_up || { cat "$TMP/redis.log" >&2; fail "redis-server did not start"; }

"$PY" -u "$ROOT/examples/function/function.py" --port 0 >"$TMP/function.log" 2>&1 &
pids+=($!)
function_pid=$!
function_up() { alive "$function_pid" && grep -q '^listening on ' "$TMP/function.log"; }
wait_for "$TIMEOUT_S" function_up ||
  { cat "$TMP/function.log" >&2; fail "the example function did not start"; }
FUNCTION_PORT=$(sed -n 's|^listening on http://127.0.0.1:\([0-9]*\)/.*|\1|p' "$TMP/function.log")
step "started redis-server on 127.0.0.1:$REDIS_PORT and examples/function/function.py on 127.0.0.1:$FUNCTION_PORT"

# ---- 3. triggerd ------------------------------------------------------------------------------
export TD_DEMO_REDIS_PORT=$REDIS_PORT TD_DEMO_FUNCTION_PORT=$FUNCTION_PORT
"$TRIGGERD" check -c "$ROOT/conf/demo.yaml" >/dev/null ||
  fail "conf/demo.yaml does not pass 'triggerd check'"
t0=$(date +%s%N)
"$TRIGGERD" run -c "$ROOT/conf/demo.yaml" 2>"$TMP/triggerd.log" &
pids+=($!)
triggerd_pid=$!
td_ready() {
  alive "$triggerd_pid" || return 2
  grep -Eq '(^|[ "])ready("|$| )' "$TMP/triggerd.log"
}
rc=0
wait_for "$TIMEOUT_S" td_ready || rc=$?
if [ "$rc" -ne 0 ]; then
  cat "$TMP/triggerd.log" >&2
  alive "$triggerd_pid" || fail "triggerd exited before it was ready"
  fail "triggerd was not ready after ${TIMEOUT_S}s"
fi
t1=$(date +%s%N)
step "triggerd run -c conf/demo.yaml: ready after $(((t1 - t0) / 1000000)) ms (stream 'demo' -> the function; dead letters -> 'demo-dead-letters')"

# ---- 4. publish ------------------------------------------------------------------------------
URL="redis://127.0.0.1:$REDIS_PORT/demo"
step "publishing 5 events to $URL"
ids=()
add() { # add DESCRIPTION COMMAND...: runs a publishing command, records the event id it prints
  local what=$1 id
  shift
  id=$("$@") || fail "publishing failed: $*"
  printf '    %-20s %s\n' "$id" "$what"
  ids+=("$id")
}
add "plain entry (redis-cli XADD): order=1001 item=book" rcli XADD demo '*' order 1001 item book
add "plain entry (redis-cli XADD): order=1002 item=lamp" rcli XADD demo '*' order 1002 item lamp
add "plain entry (triggerd publish --data)" "$TRIGGERD" publish "$URL" --data 'hello from triggerd publish'
add "binary-mode CloudEvent (--ce-type)" "$TRIGGERD" publish "$URL" --ce-type com.example.demo \
  --ce-source /demo/cli --ce-id demo-order-1003 --content-type application/json \
  --data '{"order": 1003, "item": "chair"}'
reject_id=demo-order-1004
add "CloudEvent with \"reject\": true" "$TRIGGERD" publish "$URL" --ce-type com.example.demo \
  --ce-source /demo/cli --ce-id "$reject_id" --content-type application/json \
  --data '{"order": 1004, "item": "anvil", "reject": true}'
# Wrapped plain entries take the entry id as their CloudEvent id; the CloudEvents keep theirs.
ids[3]=demo-order-1003
ids[4]=$reject_id

# ---- 5. wait for delivery, acks and the dead letter -------------------------------------------
received_all() {
  local id
  for id in "${ids[@]}"; do
    grep -Fq "received com.example.demo id=$id " "$TMP/function.log" || return 1
  done
}
pending() { rcli XPENDING demo triggerd | head -1; }
settled() { received_all && [ "$(rcli XLEN demo-dead-letters)" -ge 1 ] && [ "$(pending)" = 0 ]; }
wait_for "$TIMEOUT_S" settled || true

step "the function printed:"
grep -v '^listening on ' "$TMP/function.log" | indent
received_all || fail "not every event arrived at the function within ${TIMEOUT_S}s"
[ "$(pending)" = 0 ] || fail "$(pending) entries of stream 'demo' are still unacknowledged"
info "${G}all 5 events arrived; every entry of stream 'demo' is acknowledged (XPENDING: 0)${N}"

# ---- 6. the dead letter, read back and decoded -------------------------------------------------
step "the dead letter, read back from stream 'demo-dead-letters':"
"$PY" - "$REDIS_PORT" "$reject_id" <<'EOF' || fail "the dead letter is missing or wrong"
import base64, json, sys
import redis

port, want_id = int(sys.argv[1]), sys.argv[2]
r = redis.Redis(host="127.0.0.1", port=port)
entries = r.xrange("demo-dead-letters")
ok = True
def check(cond, what):
    global ok
    if not cond:
        print(f"    CHECK FAILED: {what}")
        ok = False
check(len(entries) == 1, f"exactly one dead letter (found {len(entries)})")
if not entries:
    sys.exit(1)
entry_id, raw = entries[0]
f = {k.decode(): v for k, v in raw.items()}
s = lambda k: f.get(k, b"").decode("utf-8", "replace")
try:
    body = base64.b64decode(f.get("ce_knativeerrordata", b""), validate=True).decode("utf-8", "replace")
except ValueError:
    body = "(not base64: %r)" % f.get("ce_knativeerrordata")
rows = [
    ("entry", entry_id.decode()),
    ("event id", s("ce_id")),
    ("trigger", s("ce_deadlettertrigger")),
    ("reason", s("ce_deadletterreason")),
    ("HTTP code", s("ce_knativeerrorcode")),
    ("attempts", s("ce_deadletterattempts")),
    ("destination", s("ce_knativeerrordest")),
    ("error body", body + "   (ce_knativeerrordata, base64-decoded)"),
    ("original data", s("data") + "   (" + s("content-type") + ")"),
]
for k, v in rows:
    print(f"    {k + ':':15s}{v}")
check(s("ce_id") == want_id, f"the dead letter is event {want_id}")
check(s("ce_knativeerrorcode") == "400", "knativeerrorcode is 400")
check(s("ce_deadletterreason") != "", "deadletterreason is set")
check(s("ce_deadletterattempts") == "1", "one attempt (a 400 is final, not retried)")
check(s("ce_deadlettertrigger") == "demo", "deadlettertrigger is 'demo'")
check('"reject": true' in s("data"), "the original data is kept")
try:
    check("reject" in json.loads(body).get("error", ""), "the function's error body is kept")
except (ValueError, AttributeError):
    check(False, "the function's error body is JSON")
sys.exit(0 if ok else 1)
EOF
info "${G}dead letter checked: code 400 after 1 attempt, the function's error body kept${N}"

# ---- 7. stop -----------------------------------------------------------------------------------
kill -TERM "$triggerd_pid"
td_rc=0
wait "$triggerd_pid" || td_rc=$?
step "triggerd's log (stderr):"
indent <"$TMP/triggerd.log"
[ "$td_rc" -eq 0 ] || fail "triggerd exited with $td_rc after SIGTERM"
step "${G}demo passed${N}: triggerd drained and exited 0 on SIGTERM; stopping redis-server and the function"
