#!/usr/bin/env bash
# Strongroom's benchmark in one go: builds release once, starts Strongroom itself on free
# ports (SQLite, then PostgreSQL), runs every scenario at concurrency 1 and 16 with our own
# load generator, stops the server, writes bench/results/<time>.json and prints the table.
#
# Env: DURATION (10), WARMUP (2), CONCURRENCIES ("1 16"), SCENARIOS (all), DBS ("sqlite postgres"),
#      LOADGEN_THREADS (1), PEER=1 (also measure oidc-provider from ../shared/peer-bench with the
#      same load generator), PG_ADMIN_URL (default postgres://strongroom:strongroom@127.0.0.1:5432/postgres),
#      NO_BUILD=1 (skip cargo build).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DURATION="${DURATION:-10}"; WARMUP="${WARMUP:-2}"; CONCURRENCIES="${CONCURRENCIES:-1 16}"
SCENARIOS="${SCENARIOS:-cc-mtls cc-mtls-newconn cc-jwt-dpop fapi2-flow fapi2-flow-es256 introspect}"
DBS="${DBS:-sqlite postgres}"; LOADGEN_THREADS="${LOADGEN_THREADS:-1}"
PG_ADMIN_URL="${PG_ADMIN_URL:-postgres://strongroom:strongroom@127.0.0.1:5432/postgres}"
STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
WORK="$(mktemp -d /tmp/strongroom-bench.XXXXXX)"
mkdir -p bench/results
if [ -z "${NO_BUILD:-}" ]; then
  cargo build --release -p strongroom-bench -p strongroom
fi
TARGET_DIR="$(cargo metadata --format-version 1 --no-deps 2>/dev/null | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
TARGET_DIR="${TARGET_DIR:-$ROOT/target}"
SR="$TARGET_DIR/release/strongroom"; LG="$TARGET_DIR/release/strongroom-bench"
[ -x "$SR" ] && [ -x "$LG" ] || { echo "missing $SR or $LG" >&2; exit 1; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
SERVER_PID=""
stop_server() { if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; fi; SERVER_PID=""; }
trap 'stop_server; [ -n "${PEER_STARTED:-}" ] && /tmp/peer-bench/oidc-provider/stop.sh >/dev/null 2>&1 || true' EXIT

RESULTS=()
FAILED=0
run_target() { # target-file label
  local target="$1" label="$2" sc c out
  for sc in $SCENARIOS; do
    grep -q "\"$sc\"" "$target" || { echo "  ($label has no scenario $sc)"; continue; }
    for c in $CONCURRENCIES; do
      out="$WORK/$label-$sc-c$c.json"
      echo "== $label $sc c=$c (load $(cut -d' ' -f1-3 /proc/loadavg))"
      if "$LG" run --target "$target" --scenario "$sc" --concurrency "$c" --duration "$DURATION" --warmup "$WARMUP" \
           --threads "$LOADGEN_THREADS" --out "$out" 2> "$out.log"; then :; else
        echo "!! $label $sc c=$c FAILED (exit $?):"; cat "$out.log"; FAILED=1
      fi
      tail -n +3 "$out.log" | grep -v '^$' | head -3 || true
      [ -f "$out" ] && RESULTS+=("$out")
    done
  done
}

start_strongroom() { # db
  local db="$1" data="$WORK/$1/strongroom-data" pub mt
  mkdir -p "$WORK/$db"
  pub=$(free_port); mt=$(free_port)
  export STRONGROOM_DATA_DIR="$data" STRONGROOM_LISTEN__PUBLIC="127.0.0.1:$pub" STRONGROOM_LISTEN__MTLS="127.0.0.1:$mt"
  export STRONGROOM_ISSUER="https://localhost:$pub" STRONGROOM_LISTEN__MTLS_BASE_URL="https://localhost:$mt"
  export STRONGROOM_PAGES__REMEMBER_CONSENT_FOR_FAPI=true STRONGROOM_LOG__LEVEL=warn
  if [ "$db" = postgres ]; then
    local dbname="srbench_${STAMP,,}"; dbname="${dbname//[^a-z0-9_]/_}"
    psql "$PG_ADMIN_URL" -qc "CREATE DATABASE $dbname" >/dev/null
    export STRONGROOM_DATABASE_URL="${PG_ADMIN_URL%/*}/$dbname"
    # The development set-up on PostgreSQL is refused unless asked for; the benchmark asks.
    export STRONGROOM_DEVELOPMENT_ALLOW_PRODUCTION_SETTINGS=true
  else
    unset STRONGROOM_DATABASE_URL STRONGROOM_DEVELOPMENT_ALLOW_PRODUCTION_SETTINGS || true
  fi
  (cd "$WORK/$db" && exec "$SR" serve > "$WORK/$db/server.log" 2>&1) &
  SERVER_PID=$!
  echo "$SERVER_PID" > "$WORK/$db/server.pid"
  for _ in $(seq 1 100); do
    curl -sf --cacert "$data/pki/ca.pem" --resolve "localhost:$pub:127.0.0.1" "$STRONGROOM_ISSUER/.well-known/openid-configuration" >/dev/null 2>&1 && break
    kill -0 "$SERVER_PID" 2>/dev/null || { echo "server died:"; cat "$WORK/$db/server.log"; exit 1; }
    sleep 0.2
  done
  # Bench clients (same keys as the demo clients): client_credentials variants and a FAPI 2.0
  # client with PS256 ID tokens like the peer's.
  local jwk; jwk=$("$LG" public-jwk "$data/clients/demo-fapi2-jwt-signing-key.pem")
  cat > "$WORK/$db/c1.json" <<JSON
{"client_id": "bench-cc-mtls", "profile": "fapi2-security", "token_endpoint_auth_method": "tls_client_auth",
 "tls_client_auth_subject_dn": "CN=demo-fapi2-mtls,O=Strongroom Demo", "tls_client_certificate_bound_access_tokens": true,
 "grant_types": ["client_credentials"], "scope": "accounts payments", "redirect_uris": []}
JSON
  cat > "$WORK/$db/c2.json" <<JSON
{"client_id": "bench-cc-jwt", "profile": "fapi2-security", "token_endpoint_auth_method": "private_key_jwt",
 "token_endpoint_auth_signing_alg": "ES256", "jwks": {"keys": [$jwk]}, "dpop_bound_access_tokens": true,
 "grant_types": ["client_credentials"], "scope": "accounts payments", "redirect_uris": []}
JSON
  cat > "$WORK/$db/c3.json" <<JSON
{"client_id": "bench-fapi2-ps256", "profile": "fapi2-security", "token_endpoint_auth_method": "private_key_jwt",
 "token_endpoint_auth_signing_alg": "ES256", "jwks": {"keys": [$jwk]}, "dpop_bound_access_tokens": true,
 "id_token_signed_response_alg": "PS256", "redirect_uris": ["$STRONGROOM_ISSUER/demo/callback"]}
JSON
  for f in c1 c2 c3; do (cd "$WORK/$db" && "$SR" clients add --metadata "$f.json" >/dev/null); done
  sed -e "s|@DATA@|$data|g" -e "s|@ISSUER@|$STRONGROOM_ISSUER|g" -e "s|@PIDFILE@|$WORK/$db/server.pid|g" -e "s|@DB@|$db|g" \
    bench/targets/strongroom.template.json > "$WORK/$db/target.json"
}

# PostgreSQL runs need the local cluster, role and database that the test script sets up.
case " $DBS " in *" postgres "*) SETUP_ONLY=1 bash "$ROOT/scripts/test.sh" ;; esac

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -m | awk '/Mem:/{print $2" MiB"}'); load $(cut -d' ' -f1-3 /proc/loadavg)"
for db in $DBS; do
  start_strongroom "$db"
  run_target "$WORK/$db/target.json" "strongroom-$db"
  echo "server $db: VmHWM $(grep VmHWM /proc/$SERVER_PID/status | awk '{print $2" kB"}')"
  stop_server
done

if [ "${PEER:-}" = 1 ]; then
  [ -d /tmp/peer-bench ] || cp -r "$ROOT/../shared/peer-bench" /tmp/peer-bench
  /tmp/peer-bench/oidc-provider/start.sh && PEER_STARTED=1
  run_target "$ROOT/bench/targets/oidc-provider.json" "oidc-provider"
fi

META=$(printf '{"started_utc":"%s","machine":{"nproc":%s,"cpu":"%s","mem_mib":%s,"loadavg_end":"%s"},"duration_s":%s,"warmup_s":%s,"loadgen_threads":%s,"commit":"%s"}' \
  "$STAMP" "$(nproc)" "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)" "$(free -m | awk '/Mem:/{print $2}')" \
  "$(cut -d' ' -f1-3 /proc/loadavg)" "$DURATION" "$WARMUP" "$LOADGEN_THREADS" "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)")
echo
"$LG" report --meta "$META" --out "bench/results/$STAMP.json" "${RESULTS[@]}"
echo
echo "results: bench/results/$STAMP.json (logs in $WORK)"
exit $FAILED
