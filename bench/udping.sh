#!/usr/bin/env bash
# The UDP reflector's echo rate on loopback with 64-byte datagrams, beside a
# minimal C recvfrom/sendto loop (the practical limit of the kernel path) and
# a python3 echo server (a floor). Each server is pinned to CPU 0 and the
# load generator (`netkit udping ping --flood`, which keeps a window of
# probes in flight using batched sendmmsg/recvmmsg) to CPU 1.
#
# Usage: bench/udping.sh [seconds per run, default 5] [rounds, default 3]
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-5}
rounds=${2:-3}
window=${WINDOW:-64}
size=64
server_cpu=${SERVER_CPU:-0}
client_cpu=${CLIENT_CPU:-1}

for tool in gcc python3 taskset; do
  command -v "$tool" >/dev/null || { echo "bench/udping.sh needs $tool" >&2; exit 1; }
done

cargo build --release --quiet -p netkit
netkit=$PWD/target/release/netkit
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

cat >"$work/echo.c" <<'C'
/* Minimal UDP echo: one recvfrom, one sendto, forever. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>

int main(void) {
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in addr = {0};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0 ||
        getsockname(fd, (struct sockaddr *)&addr, &len) != 0) {
        perror("echo");
        return 1;
    }
    printf("listening on 127.0.0.1:%d\n", ntohs(addr.sin_port));
    fflush(stdout);
    static char buf[65536];
    for (;;) {
        struct sockaddr_in peer;
        socklen_t peer_len = sizeof peer;
        ssize_t n = recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&peer, &peer_len);
        if (n >= 0)
            sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&peer, peer_len);
    }
}
C
gcc -O2 -o "$work/echo" "$work/echo.c"

cat >"$work/echo.py" <<'PY'
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
print("listening on 127.0.0.1:%d" % s.getsockname()[1], flush=True)
while True:
    data, peer = s.recvfrom(65536)
    s.sendto(data, peer)
PY

# Starts a server pinned to the server CPU; sets $addr from its
# `listening on` line.
start() {
  local out="$work/server.out"
  : >"$out"
  taskset -c "$server_cpu" "$@" >"$out" 2>"$work/server.err" &
  pids+=($!)
  for _ in $(seq 100); do
    addr=$(sed -n 's/^listening on \([0-9.:]*\).*/\1/p' "$out")
    [ -n "$addr" ] && return 0
    sleep 0.05
  done
  echo "server did not start: $*" >&2
  cat "$work/server.err" >&2
  exit 1
}

stop() {
  kill "${pids[-1]}" 2>/dev/null || true
  wait "${pids[-1]}" 2>/dev/null || true
  unset 'pids[-1]'
}

# Prints the reply rate (packets/s) of one flood run against $addr.
flood() {
  taskset -c "$client_cpu" "$netkit" udping ping --flood --json --window "$window" \
    -s "$size" --duration "$duration" "$addr" |
    python3 -c 'import json, sys; print(round(json.load(sys.stdin)["rate_pps"]))'
}

median() {
  tr ' ' '\n' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}

declare -A rates
for round in $(seq "$rounds"); do
  for server in netkit c python; do
    case $server in
      netkit) start "$netkit" udping serve --bind 127.0.0.1:0 ;;
      c) start "$work/echo" ;;
      python) start python3 "$work/echo.py" ;;
    esac
    rate=$(flood)
    stop
    rates[$server]="${rates[$server]:-} $rate"
    echo "round $round: $server $rate packets/s" >&2
  done
done

netkit_rate=$(echo ${rates[netkit]} | median)
c_rate=$(echo ${rates[c]} | median)
python_rate=$(echo ${rates[python]} | median)
echo
echo "UDP echo on loopback, ${size}-byte datagrams, window $window, ${duration} s x $rounds rounds (median)"
echo "server on CPU $server_cpu, load generator (netkit udping ping --flood) on CPU $client_cpu"
printf '%-28s %12s %8s\n' server packets/s vs_C
printf '%-28s %12s %8s\n' "netkit udping serve" "$netkit_rate" "$(python3 -c "print(f'{$netkit_rate/$c_rate:.2f}')")"
printf '%-28s %12s %8s\n' "C recvfrom/sendto loop" "$c_rate" "1.00"
printf '%-28s %12s %8s\n' "python3 echo" "$python_rate" "$(python3 -c "print(f'{$python_rate/$c_rate:.2f}')")"
echo "netkit/C ratio: $(python3 -c "print(f'{$netkit_rate/$c_rate:.2f}')") (target >= 0.9)"
