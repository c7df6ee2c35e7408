#!/usr/bin/env bash
# A replicated Sekisho on this machine's loopback: two gateway processes that share nothing
# but PostgreSQL (one sequences, both serve reads and writes), a Ceph RADOS Gateway (S3) for
# the ciphertext, and the token's keys; and three witnesses, each with its own SoftHSM token,
# cosigning key and SQLite database; witness w3 also mirrors the whole log. Each gateway has
# its own data directory. gw1's SoftHSM token stands in for the network HSM every gateway of
# a real site reaches (docs/deployment.md): gw2 opens it as a configured PKCS#11 module.
# Everything listens on 127.0.0.1 only.
#
#   deploy/local-cluster.sh start     initialise what is missing, start, print addresses
#   deploy/local-cluster.sh status    what runs, and how far the witnesses have cosigned
#   deploy/local-cluster.sh stop      stop every process this script started (SIGTERM)
#   deploy/local-cluster.sh clean     stop, drop the database, delete the state directory
#
# Environment: SEKISHO_CLUSTER_DIR (state, default ./var/cluster),
# SEKISHO_CLUSTER_POSTGRES (server, default postgres://postgres@127.0.0.1:5432),
# SEKISHO_CLUSTER_DB (database, default sekisho_cluster), SEKISHO_CLUSTER_PORT (first
# port, default 18080: gateways 18081-18082, witnesses 18091-18093, Ceph 18095-18096),
# SEKISHO_CLUSTER_BLOBS (s3, the default, or filesystem: then the two gateways need one
# shared blob directory, so both use gw1's).
set -euo pipefail
cd "$(dirname "$0")/.."

ROOT="$(pwd)"
STATE="${SEKISHO_CLUSTER_DIR:-$ROOT/var/cluster}"
PG_SERVER="${SEKISHO_CLUSTER_POSTGRES:-postgres://postgres@127.0.0.1:5432}"
PG_DB="${SEKISHO_CLUSTER_DB:-sekisho_cluster}"
BASE_PORT="${SEKISHO_CLUSTER_PORT:-18080}"
PY="$ROOT/.venv/bin/python"
ORIGIN="sekisho.local/cluster"
GATEWAYS=(gw1 gw2)
WITNESSES=(w1 w2 w3)
QUORUM=2
BLOBS="${SEKISHO_CLUSTER_BLOBS:-s3}"
SOFTHSM_MODULE="$(ls /usr/lib/softhsm/libsofthsm2.so /usr/lib/*/softhsm/libsofthsm2.so 2>/dev/null | head -n 1 || true)"

[ -x "$PY" ] || { echo "local-cluster: no virtualenv at .venv (run ./dev start once)" >&2; exit 2; }

port_of() {
    case "$1" in
        gw1) echo $((BASE_PORT + 1)) ;; gw2) echo $((BASE_PORT + 2)) ;;
        w1) echo $((BASE_PORT + 11)) ;; w2) echo $((BASE_PORT + 12)) ;; w3) echo $((BASE_PORT + 13)) ;;
    esac
}
url_of() { echo "http://127.0.0.1:$(port_of "$1")"; }
pid_file() { echo "$STATE/run/$1.pid"; }
alive() { # a process that has exited but is not reaped yet (a zombie) is not alive
    kill -0 "$1" 2>/dev/null && [ "$(ps -o stat= -p "$1" 2>/dev/null | cut -c1)" != Z ]
}
running() { local f; f="$(pid_file "$1")"; [ -f "$f" ] && alive "$(cat "$f")"; }

node_env() { # node_env NAME: fill ENVV with NAME's environment (and nothing of the caller's)
    ENVV=(PATH="$PATH" HOME="${HOME:-/tmp}" LANG=C.UTF-8 SEKISHO_NODE_NAME="$1")
    case "$1" in
        gw*)
            local witnesses='[]'
            [ -f "$STATE/witnesses.json" ] && witnesses="$(cat "$STATE/witnesses.json")"
            ENVV+=(SEKISHO_DATA="$STATE/$1" SEKISHO_DATABASE_URL="$PG_SERVER/$PG_DB"
                SEKISHO_LEDGER_ORIGIN="$ORIGIN" SEKISHO_LEDGER_QUORUM="$QUORUM"
                SEKISHO_LEDGER_WITNESSES="$witnesses")
            if [ "$1" != gw1 ]; then # gw1's token plays the network HSM
                ENVV+=(SEKISHO_HSM_MODULE="$SOFTHSM_MODULE" SOFTHSM2_CONF="$STATE/gw1/hsm/softhsm2.conf"
                    SEKISHO_HSM_PIN_FILE="$STATE/gw1/hsm/user.pin")
            fi
            if [ "$BLOBS" = s3 ]; then
                local line
                while read -r line; do ENVV+=("${line#export }"); done < <(
                    CEPH_RGW_PORT=$((BASE_PORT + 16)) deploy/ceph-s3.sh env "$STATE/ceph")
                ENVV+=(SEKISHO_BLOBS_S3_BUCKET=sekisho-cluster)
            else
                ENVV+=(SEKISHO_BLOBS_DIRECTORY="$STATE/gw1/blobs")
            fi
            ;;
        w*)
            ENVV+=(SEKISHO_DATA="$STATE/$1" SEKISHO_WITNESS_NAME="$1.witness.sekisho.local"
                SEKISHO_WITNESS_MIRROR_READERS_FILE="$STATE/$1-mirror-readers")
            ;;
    esac
}

sekisho() { # sekisho NAME ARGS...: the CLI with NAME's environment
    local name="$1"; shift
    node_env "$name"
    env -i "${ENVV[@]}" "$PY" -m gateway.cli.main "$@"
}

http_json() { # http_json URL [PYTHON-EXPR over j]: GET JSON, print the expression (default: all)
    "$PY" - "$1" "${2:-j}" <<'EOF'
import json, sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=5) as r:
    j = json.load(r)
print(eval(sys.argv[2]))
EOF
}

wait_healthy() {
    local name="$1" i
    for i in $(seq 1 300); do
        if "$PY" -c "import urllib.request,sys; urllib.request.urlopen(sys.argv[1], timeout=1)" "$(url_of "$name")/healthz" 2>/dev/null; then
            return 0
        fi
        running "$name" || { echo "local-cluster: $name exited; see $STATE/logs/$name.log" >&2; tail -5 "$STATE/logs/$name.log" >&2; return 1; }
        sleep 0.1
    done
    echo "local-cluster: $name did not come up; see $STATE/logs/$name.log" >&2
    return 1
}

launch() { # launch NAME ARGS...: start a server in the background, remember its pid
    local name="$1"; shift
    if running "$name"; then return 0; fi
    node_env "$name"
    # env -i: nothing from the caller's SEKISHO_* environment leaks into a node
    nohup env -i "${ENVV[@]}" "$PY" -m gateway.cli.main "$@" \
        --host 127.0.0.1 --port "$(port_of "$name")" >>"$STATE/logs/$name.log" 2>&1 &
    echo $! >"$(pid_file "$name")"
    wait_healthy "$name"
}

create_database() {
    "$PY" - "$PG_SERVER" "$PG_DB" <<'EOF'
import asyncio, sys
import asyncpg
server, name = sys.argv[1].replace("postgres://", "postgresql://", 1), sys.argv[2]
async def main() -> None:
    conn = await asyncpg.connect(server + "/postgres", timeout=5)
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await conn.execute(f'CREATE DATABASE "{name}"')
            print(f"created PostgreSQL database {name}")
    finally:
        await conn.close()
asyncio.run(main())
EOF
}

drop_database() {
    "$PY" - "$PG_SERVER" "$PG_DB" <<'EOF'
import asyncio, sys
import asyncpg
server, name = sys.argv[1].replace("postgres://", "postgresql://", 1), sys.argv[2]
async def main() -> None:
    conn = await asyncpg.connect(server + "/postgres", timeout=5)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
    finally:
        await conn.close()
asyncio.run(main())
EOF
}

start() {
    mkdir -p "$STATE/run" "$STATE/logs"
    chmod 700 "$STATE"
    create_database
    if [ "$BLOBS" = s3 ]; then
        CEPH_MON_PORT=$((BASE_PORT + 15)) CEPH_RGW_PORT=$((BASE_PORT + 16)) \
            deploy/ceph-s3.sh start "$STATE/ceph" >/dev/null 2>>"$STATE/logs/ceph.log"
        echo "Ceph RADOS Gateway (S3) on http://127.0.0.1:$((BASE_PORT + 16))/"
    fi
    # Witnesses: own data dir, token, cosigning key and database each.
    local name vkeys=()
    for name in "${WITNESSES[@]}"; do
        local out
        out="$(sekisho "$name" witness init)"
        if grep -q '^created' <<<"$out"; then grep '^created' <<<"$out" | sed "s/^/$name: /"; fi
        vkeys+=("$(sed -n 's/^witness vkey: //p' <<<"$out")")
        launch "$name" witness serve
    done
    local triples=() i
    for i in "${!WITNESSES[@]}"; do
        triples+=("${WITNESSES[$i]}" "$(url_of "${WITNESSES[$i]}")" "${vkeys[$i]}")
    done
    "$PY" - "${triples[@]}" >"$STATE/witnesses.json" <<'EOF'
import json, sys
a = sys.argv[1:]
print(json.dumps([{"name": a[i], "url": a[i + 1], "vkey": a[i + 2]} for i in range(0, len(a), 3)]))
EOF
    # Gateways: a data dir each, one database, one object store, one token (gw1's).
    local init
    init="$(sekisho gw1 init --demo)"
    if grep -q '^created' <<<"$init"; then
        echo "$init" | sed 's/^/gateway: /'
    fi
    launch gw1 serve
    # The mirror's own credential: a ledger-read API client of the log, its token in a
    # mode 0600 file (never on a command line). Readers of w3's copy: the same token here.
    local token_file="$STATE/w3-mirror.token"
    if [ ! -s "$token_file" ]; then
        (umask 077; sekisho gw1 clients add w3-mirror --scopes ledger-read \
            | sed -n 's/^bearer token (shown once; store it now): //p' >"$token_file")
        [ -s "$token_file" ] || { echo "local-cluster: no token for the mirror" >&2; return 1; }
        tr -d '\n' <"$token_file" | sha256sum | cut -d' ' -f1 >"$STATE/w3-mirror-readers"
    fi
    local log_vkey
    log_vkey="$(http_json "$(url_of gw1)/api/v1/ledger/key" 'j["vkey"]')"
    for name in "${WITNESSES[@]}"; do
        local mirror=()
        [ "$name" = w3 ] && mirror=(--mirror --token-file "$token_file")
        sekisho "$name" witness add-log "$ORIGIN" "$log_vkey" --url "$(url_of gw1)" "${mirror[@]}" >/dev/null
    done
    launch gw2 serve
    echo
    echo "Sekisho cluster on loopback (state: $STATE)"
    printf '  %-9s %-24s %s\n' gateway "$(url_of gw1)/" "node gw1 (portal, API, /ledger/ tiles)"
    printf '  %-9s %-24s %s\n' gateway "$(url_of gw2)/" "node gw2 (same log, database, object store and token)"
    for name in "${WITNESSES[@]}"; do
        local what="witness"
        [ "$name" = w3 ] && what="witness + mirror: $(url_of w3)/mirror/$(origin_hash)/ledger/"
        printf '  %-9s %-24s %s\n' "$name" "$(url_of "$name")/" "$what"
    done
    echo "  database  $PG_SERVER/$PG_DB"
    echo "  blobs     $BLOBS"
    echo "  log       $ORIGIN  $log_vkey"
    echo "  quorum    $QUORUM of ${#WITNESSES[@]} witnesses"
    echo "  entries   for officers, auditors and mirrors: e.g. SEKISHO_LEDGER_TOKEN=\"\$(cat $token_file)\" sekisho ledger verify --url $(url_of gw1) --key <log vkey>"
    echo "Stop with: deploy/local-cluster.sh stop"
}

origin_hash() { printf '%s' "$ORIGIN" | sha256sum | cut -d' ' -f1; }

stop() {
    local name pid stopped=0
    for name in "${GATEWAYS[@]}" "${WITNESSES[@]}"; do
        running "$name" || { rm -f "$(pid_file "$name")"; continue; }
        pid="$(cat "$(pid_file "$name")")"
        kill -TERM "$pid"
        for _ in $(seq 1 150); do alive "$pid" || break; sleep 0.1; done
        if alive "$pid"; then
            echo "local-cluster: $name (pid $pid) did not stop in 15 s; killing it" >&2
            kill -KILL "$pid"
        fi
        rm -f "$(pid_file "$name")"
        echo "stopped $name (pid $pid)"
        stopped=$((stopped + 1))
    done
    if [ -f "$STATE/ceph/run/rgw.pid" ]; then
        deploy/ceph-s3.sh stop "$STATE/ceph" && echo "stopped Ceph" && stopped=$((stopped + 1))
    fi
    [ "$stopped" -gt 0 ] || echo "nothing was running"
}

status() {
    local name
    for name in "${GATEWAYS[@]}" "${WITNESSES[@]}"; do
        if running "$name"; then
            printf '  %-4s up    pid %-7s %s\n' "$name" "$(cat "$(pid_file "$name")")" "$(url_of "$name")/"
        else
            printf '  %-4s down\n' "$name"
        fi
    done
    local gw
    for gw in "${GATEWAYS[@]}"; do
        running "$gw" || continue
        http_json "$(url_of "$gw")/api/v1/ledger/witnesses" \
            '"  log: %d entries, final up to %s (quorum %d); " % (j["latest_size"], j["final_size"], j["quorum"]) + ", ".join("%s at %d%s" % (w["name"], w["size"], " [" + w["last_error"] + "]" if w["last_error"] else "") for w in j["witnesses"])'
        break
    done
    for name in "${WITNESSES[@]}"; do
        running "$name" || continue
        http_json "$(url_of "$name")/status" \
            '"  %s: %s" % (j["name"], "ALARM" if j["alarm"] else "no alarm") + "".join("; mirror at %d" % l["mirror"]["size"] for l in j["logs"] if "mirror" in l)'
    done
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    clean) stop; drop_database; rm -rf "$STATE"; echo "dropped $PG_DB and removed $STATE" ;;
    *) echo "usage: deploy/local-cluster.sh start|status|stop|clean" >&2; exit 2 ;;
esac
