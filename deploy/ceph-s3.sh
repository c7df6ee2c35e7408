#!/usr/bin/env bash
# A throw-away single-node Ceph cluster with a RADOS Gateway (S3) on loopback, for tests and the
# local cluster. One monitor, one OSD (bluestore on a sparse file), no manager, `auth none`.
#
#   deploy/ceph-s3.sh start DIR   # prints S3 settings as `export` lines once a PUT succeeds
#   deploy/ceph-s3.sh stop DIR    # stops the daemons by the PIDs it recorded
#   deploy/ceph-s3.sh env DIR     # prints the settings again
#
# Ports: CEPH_MON_PORT (default 16789), CEPH_RGW_PORT (default 17480). Needs Debian's ceph-mon,
# ceph-osd, radosgw and ceph-common (the test suite installs them through ./dev test).
set -euo pipefail

command="${1:-}"
dir="${2:-}"
[ -n "$command" ] && [ -n "$dir" ] || { echo "usage: $0 start|stop|env DIR" >&2; exit 2; }
mon_port="${CEPH_MON_PORT:-16789}"
rgw_port="${CEPH_RGW_PORT:-17480}"
access_key="sekishotestaccess"
secret_key="sekishotestsecret0123456789"
conf="$dir/ceph.conf"

ceph_cmd() { # the monitor may still be electing itself: retry for a while
    local attempt
    for attempt in $(seq 40); do
        if timeout 20 "$@" -c "$conf" 2>>"$dir/log/admin.log"; then return 0; fi
        sleep 0.25
    done
    echo "ceph-s3: '$*' kept failing (see $dir/log)" >&2
    return 1
}

print_env() {
    cat <<ENV
export SEKISHO_BLOBS_BACKEND=s3
export SEKISHO_BLOBS_S3_ENDPOINT=http://127.0.0.1:$(cat "$dir/rgw_port")
export SEKISHO_BLOBS_S3_REGION=us-east-1
export SEKISHO_BLOBS_S3_PATH_STYLE=true
export AWS_ACCESS_KEY_ID=$access_key
export AWS_SECRET_ACCESS_KEY=$secret_key
ENV
}

s3_put() {
    local code
    code=$(curl -s -o /dev/null -w "%{http_code}" --max-time 5 --aws-sigv4 "aws:amz:us-east-1:s3" \
        --user "$access_key:$secret_key" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" \
        -X PUT ${2:+--data-binary "$2"} "http://127.0.0.1:$(cat "$dir/rgw_port")/$1") || return 1
    [ "$code" = 200 ]
}

stop() {
    for name in rgw osd mon; do
        pidfile="$dir/run/$name.pid"
        [ -f "$pidfile" ] || continue
        pid=$(cat "$pidfile")
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
        rm -f "$pidfile"
    done
}

start() {
    mkdir -p "$dir"/{mon,osd,rgw,run,log}
    dir=$(cd "$dir" && pwd)
    conf="$dir/ceph.conf"
    if [ -f "$dir/run/rgw.pid" ] && kill -0 "$(cat "$dir/run/rgw.pid")" 2>/dev/null; then
        print_env; return
    fi
    local fsid
    fsid=$(cat "$dir/fsid" 2>/dev/null || { uuidgen | tee "$dir/fsid"; })
    echo "$rgw_port" > "$dir/rgw_port"
    cat > "$conf" <<CONF
[global]
fsid = $fsid
mon host = v1:127.0.0.1:$mon_port
mon initial members = a
auth cluster required = none
auth service required = none
auth client required = none
auth supported = none
ms mon client mode = crc secure
ms bind ipv4 = true
ms bind ipv6 = false
public addr = 127.0.0.1
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd crush chooseleaf type = 0
mon allow pool size one = true
mon warn on pool no redundancy = false
mon max pg per osd = 1000
paxos propose interval = 0.1
run dir = $dir/run
log file = $dir/log/\$name.log
admin socket = $dir/run/\$name.asok
keyring = /dev/null
[mon.a]
mon data = $dir/mon
mon addr = v1:127.0.0.1:$mon_port
[osd.0]
osd data = $dir/osd
osd objectstore = bluestore
bluestore block path = $dir/block.img
bluestore block create = true
bluestore block size = 10737418240
osd max object name len = 256
osd max object namespace len = 64
[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:$rgw_port
rgw data = $dir/rgw
rgw gc obj min wait = 1
rgw gc processor period = 5
rgw gc processor max time = 5
rgw enable usage log = false
rgw dns name = 127.0.0.1
# documents are large: read and write RADOS in 16 MiB pieces, not 4 MiB
# (fewer OSD round trips per GET: ~10 % faster serving, measured in B4)
rgw max chunk size = 16777216
rgw obj stripe size = 16777216
CONF
    if [ ! -f "$dir/mon/done" ]; then
        monmaptool --create --clobber --add a "v1:127.0.0.1:$mon_port" --fsid "$fsid" "$dir/monmap" >/dev/null
        ceph-mon -c "$conf" --mkfs -i a --monmap "$dir/monmap" --keyring /dev/null
        touch "$dir/mon/done"
    fi
    ceph-mon -c "$conf" -i a --pid-file "$dir/run/mon.pid" 2>>"$dir/log/daemons.log"
    if [ ! -f "$dir/osd/done" ]; then
        osd_uuid=$(uuidgen)
        ceph_cmd ceph osd create "$osd_uuid" >/dev/null
        ceph-osd -c "$conf" -i 0 --mkfs --osd-uuid "$osd_uuid" >>"$dir/log/mkfs.log" 2>&1
        ceph_cmd ceph osd crush add osd.0 1 root=default >/dev/null
        touch "$dir/osd/done"
    fi
    # The OSD can start before the monitor has committed its creation ("wrong fsid"): retry.
    local attempt
    for attempt in $(seq 20); do
        ceph-osd -c "$conf" -i 0 --pid-file "$dir/run/osd.pid" 2>>"$dir/log/daemons.log" && break
        [ "$attempt" -lt 20 ] || { echo "ceph-s3: the OSD did not start (see $dir/log)" >&2; exit 1; }
        sleep 0.5
    done
    radosgw -c "$conf" -n client.rgw.a --pid-file "$dir/run/rgw.pid" 2>>"$dir/log/daemons.log"
    if [ ! -f "$dir/rgw/user" ]; then
        for _ in $(seq 60); do
            if timeout 20 radosgw-admin -c "$conf" user create --uid=sekisho --display-name=Sekisho \
                --access-key="$access_key" --secret-key="$secret_key" >/dev/null 2>&1; then
                touch "$dir/rgw/user"; break
            fi
            sleep 0.5
        done
    fi
    [ -f "$dir/rgw/user" ] || { echo "ceph-s3: could not create the S3 user (see $dir/log)" >&2; exit 1; }
    # Ready means an S3 PUT succeeds (a probe bucket and object, signed with SigV4 by curl).
    for _ in $(seq 120); do
        if s3_put ceph-s3-probe && s3_put ceph-s3-probe/ready probe; then print_env; return; fi
        sleep 0.5
    done
    echo "ceph-s3: the RADOS Gateway did not accept a PUT within 60 s (see $dir/log)" >&2
    exit 1
}

case "$command" in
    start) start ;;
    stop) stop ;;
    env) print_env ;;
    *) echo "usage: $0 start|stop|env DIR" >&2; exit 2 ;;
esac
