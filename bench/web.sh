#!/usr/bin/env bash
# Static file serving, netkit against nginx, side by side in one run.
#
# Both servers serve the same directory from one core (taskset -c 0, one
# nginx worker with sendfile, netkit's runtime sees one CPU) with access
# logs off; wrk runs on the other core. Reported: requests/s for a 1 KiB
# file over keep-alive connections, and throughput for a 100 MiB file,
# for both servers, and the ratio netkit/nginx. Beside each figure, the
# server's CPU time per request (from /proc, all its threads), which
# other load on the machine disturbs much less than throughput. A second
# netkit with three --header flags and --cors (requests sent with an
# Origin) shows what the site settings cost on the 1 KiB test.
#
#   bench/web.sh                 # 10 s per measurement
#   DURATION=30 bench/web.sh
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10}
SMALL_CONNECTIONS=${SMALL_CONNECTIONS:-50}
LARGE_CONNECTIONS=${LARGE_CONNECTIONS:-4}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}

need() {
  command -v "$1" >/dev/null && return
  echo "== installing $2"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$2" >/dev/null
}
need nginx nginx
need wrk wrk
need taskset util-linux

echo "== building netkit (release)"
cargo build --release --quiet -p netkit
netkit=$PWD/target/release/netkit

run=$(mktemp -d /tmp/netkit-bench-web.XXXXXX)
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
head -c $((100 * 1024 * 1024)) /dev/urandom >"$root/100m.bin"
chmod 755 "$root" && chmod 644 "$root"/*

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_port() {
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return
    sleep 0.05
  done
  echo "nothing listens on port $1" >&2
  exit 1
}

nginx_port=$(free_port)
sed -e "s|@ROOT@|$root|g" -e "s|@PORT@|$nginx_port|g" -e "s|@RUN@|$run|g" \
  bench/web/nginx.conf >"$run/nginx.conf"
taskset -c "$SERVER_CPU" nginx -c "$run/nginx.conf" -e "$run/nginx-error.log" &
nginx_master=$!
pids+=($nginx_master)

netkit_port=$(free_port)
# wrk's connections all come from 127.0.0.1, one client to the server: its
# per-client limit (256 by default) is raised to the global one so a large
# SMALL_CONNECTIONS measures serving, not refusing.
taskset -c "$SERVER_CPU" "$netkit" web serve "$root" --bind "127.0.0.1:$netkit_port" --quiet \
  --max-connections-per-client 1024 >/dev/null &
netkit_pid=$!
pids+=($netkit_pid)
settings_port=$(free_port)
taskset -c "$SERVER_CPU" "$netkit" web serve "$root" --bind "127.0.0.1:$settings_port" --quiet \
  --header 'X-Frame-Options: DENY' --header 'X-Content-Type-Options: nosniff' \
  --header 'Referrer-Policy: no-referrer' --cors >/dev/null &
settings_pid=$!
pids+=($settings_pid)
wait_port "$nginx_port"
wait_port "$netkit_port"
wait_port "$settings_port"
nginx_worker=$(pgrep -P "$nginx_master" | head -1)

# CPU time of a process and all its threads, in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# wrk's summary in plain numbers: requests/s, bytes/s, and the server's
# CPU microseconds per request.
measure() { # port path connections server-pid [request-header]
  local out before after
  before=$(cpu_ticks "$4")
  out=$(taskset -c "$CLIENT_CPU" wrk -t1 -c"$3" -d"${DURATION}s" --latency ${5:+-H "$5"} "http://127.0.0.1:$1$2")
  after=$(cpu_ticks "$4")
  if grep -q "Non-2xx" <<<"$out"; then
    echo "wrk saw errors on port $1$2:" >&2
    echo "$out" >&2
    exit 1
  fi
  local rps transfer requests
  rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
  transfer=$(awk '/^Transfer\/sec:/ {print $2}' <<<"$out")
  requests=$(awk '/ requests in / {print $1}' <<<"$out")
  local ticks_per_second
  ticks_per_second=$(getconf CLK_TCK)
  echo "$rps $(to_bytes "$transfer") $(python3 -c "import sys; print(f'{(int(sys.argv[2]) - int(sys.argv[1])) / int(sys.argv[4]) / max(int(sys.argv[3]), 1) * 1e6:.1f}')" "$before" "$after" "$requests" "$ticks_per_second")"
}

to_bytes() {
  python3 -c '
import re, sys
value, unit = re.match(r"([0-9.]+)([KMGT]?B)", sys.argv[1]).groups()
scale = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}[unit]
print(int(float(value) * scale))' "$1"
}

ratio() { python3 -c "import sys; print(f'{float(sys.argv[1]) / float(sys.argv[2]):.2f}')" "$1" "$2"; }
mib() { python3 -c "import sys; print(f'{int(sys.argv[1]) / 2**20:.0f}')" "$1"; }
ms() { python3 -c "import sys; print(f'{float(sys.argv[1]) / 1000:.1f}')" "$1"; }

# Warm both (page cache, first connections), then measure each in turn.
measure "$nginx_port" /100m.bin 1 "$nginx_worker" >/dev/null
measure "$netkit_port" /100m.bin 1 "$netkit_pid" >/dev/null

echo "== 1 KiB file, $SMALL_CONNECTIONS keep-alive connections, ${DURATION}s each"
read -r nginx_rps _ nginx_cpu < <(measure "$nginx_port" /1k.bin "$SMALL_CONNECTIONS" "$nginx_worker")
read -r netkit_rps _ netkit_cpu < <(measure "$netkit_port" /1k.bin "$SMALL_CONNECTIONS" "$netkit_pid")
printf '  nginx   %10.0f requests/s  %8s us CPU/request\n' "$nginx_rps" "$nginx_cpu"
printf '  netkit  %10.0f requests/s  %8s us CPU/request\n' "$netkit_rps" "$netkit_cpu"
small_ratio=$(ratio "$netkit_rps" "$nginx_rps")
echo "  ratio netkit/nginx: $small_ratio (target >= 1.1, and CPU/request <= 0.9x nginx)"
read -r settings_rps _ settings_cpu < <(measure "$settings_port" /1k.bin "$SMALL_CONNECTIONS" "$settings_pid" "Origin: http://bench.test")
printf '  netkit with 3 headers and CORS  %10.0f requests/s  %8s us CPU/request\n' "$settings_rps" "$settings_cpu"
settings_ratio=$(ratio "$settings_rps" "$netkit_rps")
echo "  ratio with settings/without: $settings_ratio (target >= 0.95)"

echo "== 100 MiB file, $LARGE_CONNECTIONS connections, ${DURATION}s each"
read -r _ nginx_bytes nginx_cpu < <(measure "$nginx_port" /100m.bin "$LARGE_CONNECTIONS" "$nginx_worker")
read -r _ netkit_bytes netkit_cpu < <(measure "$netkit_port" /100m.bin "$LARGE_CONNECTIONS" "$netkit_pid")
echo "  nginx   $(mib "$nginx_bytes") MiB/s  $(ms "$nginx_cpu") ms CPU per 100 MiB response"
echo "  netkit  $(mib "$netkit_bytes") MiB/s  $(ms "$netkit_cpu") ms CPU per 100 MiB response"
large_ratio=$(ratio "$netkit_bytes" "$nginx_bytes")
echo "  ratio netkit/nginx: $large_ratio (target >= 1.4)"

echo "web: small-file ratio $small_ratio, large-file ratio $large_ratio, settings cost ratio $settings_ratio"
