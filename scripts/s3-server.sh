#!/usr/bin/env bash
# A throwaway S3 server on loopback: Ceph RGW on one in-memory OSD (no disk, no auth
# between daemons, nothing survives a stop). For tests and trying modelyard out.
#
#   scripts/s3-server.sh start DIR   start it in DIR; prints the AWS_* variables to export
#   scripts/s3-server.sh env DIR     print them again
#   scripts/s3-server.sh stop DIR    stop it (waits until its ports are closed)
#
#   eval "$(scripts/s3-server.sh start /tmp/s3)"   # then boto3 / modelyard find it
#
# Every port is a free one picked at start, so several servers can run side by side.
# Needs the Debian packages radosgw ceph-mon ceph-osd ceph-common (`make test` installs
# them). MODELYARD_S3_SERVER_BYTES caps the memory the OSD may fill (default 4 GiB).
set -euo pipefail

MARK=.modelyard-s3-server
KEY=modelyard
SECRET=modelyard-secret

die() { echo "s3-server: $*" >&2; exit 1; }

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

print_env() {
    local d=$1
    [[ -f "$d/env" ]] || die "no server was started in $d"
    cat "$d/env"
}

start() {
    local d=$1
    for b in ceph-mon ceph-osd radosgw radosgw-admin monmaptool ceph-authtool ceph; do
        command -v "$b" >/dev/null || die "$b not found: install radosgw ceph-mon ceph-osd ceph-common (\`make test\` does)"
    done
    mkdir -p "$d"
    d=$(cd "$d" && pwd)
    if [[ -n "$(ls -A "$d")" ]]; then
        # Only ever clean up what this script made, never an arbitrary folder.
        [[ -f "$d/$MARK" ]] || die "$d is not empty and holds no server of ours"
        [[ -f "$d/ports" ]] && for p in $(cat "$d/ports"); do
            listening "$p" && die "a server still runs in $d (port $p): stop it first"
        done
        rm -rf "$d"/{mon,osd0,run,log,rgw,ceph.conf,monmap,mon.keyring,ports,env,start.log}
    fi
    touch "$d/$MARK"
    mkdir -p "$d"/{mon,osd0,run,log,rgw}
    local v2 v1 http fsid
    v2=$(free_port); v1=$(free_port); http=$(free_port)
    while [[ $v1 == "$v2" ]]; do v1=$(free_port); done
    while [[ $http == "$v2" || $http == "$v1" ]]; do http=$(free_port); done
    echo "$http $v2 $v1" > "$d/ports"
    fsid=$(cat /proc/sys/kernel/random/uuid)
    cat > "$d/ceph.conf" <<CONF
[global]
fsid = $fsid
mon host = [v2:127.0.0.1:$v2,v1:127.0.0.1:$v1]
public network = 127.0.0.0/8
auth cluster required = none
auth service required = none
auth client required = none
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon allow pool size one = true
mon allow pool delete = true
mon max pg per osd = 1000
osd crush chooseleaf type = 0
osd objectstore = memstore
memstore device bytes = ${MODELYARD_S3_SERVER_BYTES:-4294967296}
run dir = $d/run
admin socket = $d/run/\$name.asok
pid file = $d/run/\$name.pid
log file = $d/log/\$name.log
ms bind ipv6 = false
# auth none cannot give radosgw's default "secure" monitor connection: without crc
# it retries for 300 s
ms mon client mode = crc
ms mon cluster mode = crc
ms mon service mode = crc
ms client mode = crc
ms cluster mode = crc
ms service mode = crc
mon data avail warn = 1
[mon.a]
mon data = $d/mon
[osd.0]
osd data = $d/osd0
[client.rgw]
rgw frontends = beast endpoint=127.0.0.1:$http
rgw data = $d/rgw
CONF
    export CEPH_CONF="$d/ceph.conf"
    {
        monmaptool --create --addv a "[v2:127.0.0.1:$v2,v1:127.0.0.1:$v1]" --fsid "$fsid" "$d/monmap"
        ceph-authtool --create-keyring "$d/mon.keyring" --gen-key -n mon.
        ceph-mon --mkfs -i a --monmap "$d/monmap" --keyring "$d/mon.keyring"
        ceph-mon -i a
        local osd
        osd=$(ceph osd create)
        ceph-osd -i "$osd" --mkfs
        ceph-osd -i "$osd"
        for _ in $(seq 1 300); do ceph osd stat 2>/dev/null | grep -q '1 up' && break; sleep 0.1; done
        # RGW's pools, made side by side: radosgw makes them one after another (~6 s)
        for pool in .rgw.root default.rgw.log default.rgw.control default.rgw.meta \
                default.rgw.buckets.index default.rgw.buckets.data default.rgw.buckets.non-ec; do
            { ceph osd pool create "$pool" 8 8 && ceph osd pool application enable "$pool" rgw; } &
        done
        wait
        timeout 60 radosgw -n client.rgw
        for _ in $(seq 1 600); do curl -s -o /dev/null "http://127.0.0.1:$http/" && break; sleep 0.1; done
        radosgw-admin user create --uid=modelyard --display-name=modelyard \
            --access-key="$KEY" --secret="$SECRET"
    } > "$d/start.log" 2>&1 || die "could not start (see $d/start.log and $d/log)"
    curl -s -o /dev/null "http://127.0.0.1:$http/" || die "radosgw does not answer on port $http (see $d/log)"
    cat > "$d/env" <<ENV
export AWS_ENDPOINT_URL=http://127.0.0.1:$http
export AWS_ACCESS_KEY_ID=$KEY
export AWS_SECRET_ACCESS_KEY=$SECRET
export AWS_REGION=us-east-1
ENV
    print_env "$d"
}

alive() { [[ -r /proc/$1/stat ]] && [[ $(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null) != Z ]]; }

stop() {
    local d=$1
    [[ -d "$d" ]] || die "no such folder: $d"
    [[ -f "$d/$MARK" ]] || die "$d holds no server of ours"
    local f pids=()
    # radosgw first, the monitor last: a daemon whose monitor is gone hangs on exit.
    for f in "$d"/run/client.rgw.pid "$d"/run/osd.*.pid "$d"/run/mon.*.pid; do
        [[ -f "$f" ]] || continue
        pids+=("$(cat "$f")")
        kill "${pids[-1]}" 2>/dev/null || true
    done
    # An exited daemon can linger as a zombie until PID 1 reaps it: that counts as gone.
    local p busy
    for i in $(seq 1 300); do
        busy=0
        for p in "${pids[@]}"; do alive "$p" && busy=1; done
        for p in $(cat "$d/ports" 2>/dev/null); do listening "$p" && busy=1; done
        if [[ $busy == 0 ]]; then
            rm -f "$d"/run/*.pid
            return 0
        fi
        # ceph-osd takes 5 s to stop politely; its memstore holds nothing worth that
        if [[ $i == 10 || $i == 200 ]]; then
            for p in "${pids[@]}"; do alive "$p" && kill -9 "$p" 2>/dev/null; done
        fi
        sleep 0.1
    done
    die "the server in $d did not stop within 30 s"
}

case "${1:-}" in
    start) [[ $# == 2 ]] || die "usage: $0 start DIR"; start "$2" ;;
    stop) [[ $# == 2 ]] || die "usage: $0 stop DIR"; stop "$2" ;;
    env) [[ $# == 2 ]] || die "usage: $0 env DIR"; print_env "$2" ;;
    *) die "usage: $0 start|stop|env DIR" ;;
esac
