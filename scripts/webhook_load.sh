#!/usr/bin/env bash
# Load benchmark for `sparky serve`, measured in one run on this machine:
#  1. requests/s and server CPU per webhook for POST /webhooks/alertmanager (a 2 KB alert,
#     1,000 playbooks loaded, every delivery distinct so none is a duplicate) against a
#     parse-only axum handler (examples/parse_only_server.rs) — goal: Sparky's CPU per
#     webhook <= 2x the parse-only one's. Sparky's CPU includes deciding every event
#     (the inbox is drained before CPU is read) and its durable commits.
#  2. reload time with 1,000 and 10,000 playbooks;
#  3. p99 latency during reloads (one every 200 ms) against steady state.
# Needs wrk (apt-get install wrk). Usage: scripts/webhook_load.sh [seconds per run, default 15]
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${1:-15}"
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install -y wrk" >&2; exit 2; }
cargo build --release --quiet --bin sparky --example parse_only_server
TARGET="${CARGO_TARGET_DIR:-target}"
BIN="$(realpath -m "$TARGET/release/sparky")"
BASE_BIN="$(realpath -m "$TARGET/release/examples/parse_only_server")"
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
BODY=tests/fixtures/ingest/alertmanager/kube-prometheus_KubePodCrashLooping_firing.json
TICKS=$(getconf CLK_TCK)

gen_playbooks() { # $1 folder, $2 count: the shipped playbooks plus generated ones about other alerts
  mkdir -p "$1"; cp playbooks/*.sparky "$1"/
  python3 - "$1" "$2" <<'PY'
import sys
folder, n = sys.argv[1], int(sys.argv[2])
for i in range(n - 4):
    cond = f'  when {{ event.labels.namespace != "ns{i}" }}\n' if i % 10 == 0 else ''
    open(f"{folder}/GEN-{i:05}.sparky", "w").write(
        f'/// Generated.\nplaybook GEN-{i:05} "generated {i}" {{\n  status active\n  owner "team:gen"\n'
        f'  on alert from alertmanager {{\n    labels.alertname == "Generated{i}"\n    labels.namespace =~ "^(prod|staging)"\n  }}\n'
        f'{cond}  l3 priority P3\n}}\n')
PY
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

cat > "$WORK/post.lua" <<'LUA'
local f = io.open(os.getenv("BODY_FILE"), "rb"); local body = f:read("*a"); f:close()
local n = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  n = n + 1
  -- a distinct delivery each time (same alert, another receiver): never a duplicate
  local b = string.gsub(body, '"receiver": "Default"', '"receiver": "r' .. n .. '-' .. math.random(1e9) .. '"', 1)
  return wrk.format(nil, nil, nil, b)
end
LUA

wait_ready() { for _ in $(seq 1 200); do curl -sf "$1/readyz" >/dev/null && return 0; sleep 0.05; done; echo "not ready: $1" >&2; return 1; }
drain() { for _ in $(seq 1 2000); do curl -s "$1/api/v1/status" | grep -q '"pending"' || return 0; sleep 0.05; done; }

run_wrk() { BODY_FILE="$BODY" wrk -t2 -c16 -d"${SECS}s" --latency -s "$WORK/post.lua" "$1/webhooks/alertmanager"; }
requests_of() { awk '/requests in/ {print $1}' "$1"; }
p99_of() { awk '$1=="99%" {print $2}' "$1"; }

gen_playbooks "$WORK/pb1000" 1000
printf 'admin_token: bench\nlisten: 127.0.0.1:18080\nlog: {level: warn}\n' > "$WORK/sparky.yaml"
(cd "$WORK" && exec "$BIN" serve --config sparky.yaml --playbooks pb1000 --store "sqlite://$WORK/s.db") 2>"$WORK/sparky.log" &
SPARKY=$!
"$BASE_BIN" 127.0.0.1:18081 2>/dev/null &
BASELINE=$!
wait_ready http://127.0.0.1:18080
sleep 0.5

echo "== parse-only baseline"
c0=$(cpu_ticks $BASELINE); run_wrk http://127.0.0.1:18081 > "$WORK/base.txt"; c1=$(cpu_ticks $BASELINE)
base_req=$(requests_of "$WORK/base.txt"); base_cpu=$((c1 - c0))
echo "== sparky serve, 1,000 playbooks"
c0=$(cpu_ticks $SPARKY); run_wrk http://127.0.0.1:18080 > "$WORK/sparky.txt"; drain http://127.0.0.1:18080; c1=$(cpu_ticks $SPARKY)
sp_req=$(requests_of "$WORK/sparky.txt"); sp_cpu=$((c1 - c0))
grep -E "Requests/sec|Non-2xx" "$WORK/base.txt" | sed 's/^/  baseline /'
grep -E "Requests/sec|Non-2xx" "$WORK/sparky.txt" | sed 's/^/  sparky   /'
python3 - "$base_req" "$base_cpu" "$sp_req" "$sp_cpu" "$TICKS" <<'PY'
import sys
br, bc, sr, sc, t = map(float, sys.argv[1:])
b = bc / t / br * 1e6; s = sc / t / sr * 1e6
print(f"  CPU per webhook: parse-only {b:.1f} us, sparky {s:.1f} us (decided and committed) -> ratio {s/b:.2f} (goal <= 2)")
PY

echo "== p99 latency, steady vs during reloads (one every 200 ms)"
run_wrk http://127.0.0.1:18080 > "$WORK/steady.txt"; drain http://127.0.0.1:18080
( while true; do curl -s -o /dev/null -X POST -H 'Authorization: Bearer bench' http://127.0.0.1:18080/-/reload; sleep 0.2; done ) &
RELOADER=$!
run_wrk http://127.0.0.1:18080 > "$WORK/reloading.txt"; kill $RELOADER; drain http://127.0.0.1:18080
echo "  steady p99 $(p99_of "$WORK/steady.txt"); during reloads p99 $(p99_of "$WORK/reloading.txt"); non-2xx during reloads: $(grep -E 'Non-2xx' "$WORK/reloading.txt" | awk '{print $NF}' || true)"
kill $SPARKY $BASELINE; wait $SPARKY $BASELINE 2>/dev/null || true

echo "== reload time (a daemon per ruleset size; POST /-/reload, as the daemon measures it)"
for n in 1000 10000; do
  [ -d "$WORK/pb$n" ] || gen_playbooks "$WORK/pb$n" "$n"
  printf 'admin_token: bench\nlisten: 127.0.0.1:18082\nlog: {level: warn}\n' > "$WORK/reload.yaml"
  "$BIN" serve --config "$WORK/reload.yaml" --playbooks "$WORK/pb$n" --store "sqlite://$WORK/r$n.db" 2>/dev/null &
  R=$!
  wait_ready http://127.0.0.1:18082
  for i in 1 2 3; do
    curl -s -X POST -H 'Authorization: Bearer bench' http://127.0.0.1:18082/-/reload \
      | python3 -c 'import json,sys; r=json.load(sys.stdin)["reload"]; print("  %s playbooks: reload %s ms (successful: %s)" % (r["playbooks"], r["took_ms"], r["successful"]))'
  done
  kill $R; wait $R 2>/dev/null || true
done
