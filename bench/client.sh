#!/usr/bin/env bash
# The HTTP client, netkit web get against curl, side by side in one run,
# both fetching from one nginx on loopback.
#
#   1. N sequential small GETs on one connection: N URLs of a 1 KiB file on
#      one command line (both tools keep the connection): requests/s.
#   2. A 1 GiB download to /dev/null: MiB/s.
#
# Each measurement is taken ROUNDS times per tool, alternating, and the best
# of each is compared; the ratio is netkit/curl (≥ 1.0: netkit is as fast).
#
#   bench/client.sh
#   N=2000 ROUNDS=5 bench/client.sh
#   NETKIT=target/release/netkit bench/client.sh   # no build
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-1000}
ROUNDS=${ROUNDS:-3}
SIZE_MIB=${SIZE_MIB:-1024}

need() {
  command -v "$1" >/dev/null && return
  echo "== installing $2"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$2" >/dev/null
}
need nginx nginx
need curl curl

# NETKIT=path/to/netkit skips the build (a release binary already built).
if [ -z "${NETKIT:-}" ]; then
  echo "== building netkit (release)"
  cargo build --release --quiet -p netkit
fi
netkit=${NETKIT:-$PWD/target/release/netkit}

run=$(mktemp -d /tmp/netkit-bench-client.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$run"
}
trap cleanup EXIT

chmod 755 "$run"
root=$run/root
mkdir -p "$root"
head -c 1024 /dev/urandom >"$root/1k.bin"
# Sparse: nothing on disk, and nginx still sends every byte.
truncate -s "${SIZE_MIB}M" "$root/big.bin"
chmod 755 "$root" && chmod 644 "$root"/*

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$run/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $run/nginx.pid;
error_log $run/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  keepalive_requests 1000000;
  client_body_temp_path $run/body;
  proxy_temp_path $run/proxy;
  fastcgi_temp_path $run/fastcgi;
  uwsgi_temp_path $run/uwsgi;
  scgi_temp_path $run/scgi;
  server {
    listen 127.0.0.1:$port;
    root $root;
  }
}
CONF
nginx -c "$run/nginx.conf" -e "$run/error.log" &
pids+=($!)
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.05
done

urls=()
for _ in $(seq "$N"); do urls+=("http://127.0.0.1:$port/1k.bin"); done
big=http://127.0.0.1:$port/big.bin

now() { date +%s.%N; }
# Seconds one command takes, its output discarded.
timed() {
  local start end
  start=$(now)
  "$@" >/dev/null
  end=$(now)
  echo "$end - $start" | bc -l
}

best() { sort -g | head -1; }

small_curl=() small_netkit=() big_curl=() big_netkit=()
for round in $(seq "$ROUNDS"); do
  small_curl+=("$(timed curl -s "${urls[@]}")")
  small_netkit+=("$(timed "$netkit" web get -s "${urls[@]}")")
  big_curl+=("$(timed curl -s -o /dev/null "$big")")
  big_netkit+=("$(timed "$netkit" web get -s -o /dev/null "$big")")
  echo "   round $round done"
done

sc=$(printf '%s\n' "${small_curl[@]}" | best)
sn=$(printf '%s\n' "${small_netkit[@]}" | best)
bc_=$(printf '%s\n' "${big_curl[@]}" | best)
bn=$(printf '%s\n' "${big_netkit[@]}" | best)

rate() { echo "$1 / $2" | bc -l; }
printf '== %d sequential GETs of 1 KiB on one connection (best of %d)\n' "$N" "$ROUNDS"
printf '   curl   %8.0f req/s\n' "$(rate "$N" "$sc")"
printf '   netkit %8.0f req/s\n' "$(rate "$N" "$sn")"
printf '   ratio  %8.2f (netkit/curl, target >= 1.0)\n' "$(echo "$sc / $sn" | bc -l)"
printf '== %d MiB download (best of %d)\n' "$SIZE_MIB" "$ROUNDS"
printf '   curl   %8.0f MiB/s\n' "$(rate "$SIZE_MIB" "$bc_")"
printf '   netkit %8.0f MiB/s\n' "$(rate "$SIZE_MIB" "$bn")"
printf '   ratio  %8.2f (netkit/curl, target >= 1.0)\n' "$(echo "$bc_ / $bn" | bc -l)"
