#!/usr/bin/env bash
# Packet capture under a bounded loopback UDP flood: `netkit udping ping
# --flood` against `netkit udping serve`, captured by `netkit capture -w` and
# by `tcpdump -w` in turn, with the same filter and snapshot length. Reports
# packets written, packets the kernel dropped, and the capturing process's
# CPU time per packet written.
#
# Usage: bench/capture.sh [seconds per flood, default 3] [rounds, default 2]
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-3}
rounds=${2:-2}
snaplen=96
window=${WINDOW:-64}

for tool in tcpdump capinfos; do
  command -v "$tool" >/dev/null || { echo "bench/capture.sh needs $tool (apt-get install tcpdump tshark)" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "bench/capture.sh needs root (packet sockets)" >&2; exit 1; }

cargo build --release --quiet -p netkit
netkit=$PWD/target/release/netkit
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# The server prints `listening on ADDR` once bound.
"$netkit" udping serve --bind 127.0.0.1:0 >"$work/serve.out" 2>/dev/null &
pids+=($!)
for _ in $(seq 100); do grep -q 'listening on' "$work/serve.out" && break; sleep 0.05; done
addr=$(sed -n 's/.*listening on \([0-9.:]*\).*/\1/p' "$work/serve.out" | head -1)
port=${addr##*:}
filter="udp port $port"

ticks=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# run NAME COMMAND...: capture to $work/NAME.cap during one flood; prints
# "written dropped cpu_seconds flood_rate".
run() {
  local name=$1; shift
  local file="$work/$name.cap"
  "$@" -i lo -s "$snaplen" -w "$file" "$filter" 2>"$work/$name.err" &
  local pid=$!
  pids+=("$pid")
  for _ in $(seq 200); do grep -q 'listening on' "$work/$name.err" && break; sleep 0.05; done
  local before; before=$(cpu_ticks "$pid")
  local rate
  rate=$("$netkit" udping ping --flood --window "$window" -s 64 --duration "${duration}s" "$addr" 2>&1 \
    | grep -o '[0-9.]* replies/s' | head -1 | cut -d' ' -f1)
  # Let the capture drain what is queued, then read its CPU time.
  sleep 1
  local after; after=$(cpu_ticks "$pid")
  kill -INT "$pid"
  wait "$pid" || true
  local written; written=$(capinfos -c -M "$file" | awk '/Number of packets/ {print $NF}')
  local dropped; dropped=$(awk '/dropped by kernel/ {print $1}' "$work/$name.err")
  local cpu; cpu=$(echo "($after - $before) / $ticks" | bc -l)
  echo "$written ${dropped:-?} $cpu ${rate:-?}"
  rm -f "$file"
}

printf '%-8s %5s %12s %10s %12s %14s\n' tool round written dropped 'µs CPU/pkt' 'flood replies/s'
declare -A total_written total_dropped
for round in $(seq "$rounds"); do
  for name in netkit tcpdump; do
    if [ "$name" = netkit ]; then
      result=$(run netkit "$netkit" capture)
    else
      result=$(run tcpdump tcpdump -n)
    fi
    read -r written dropped cpu rate <<<"$result"
    per=$(echo "$cpu * 1000000 / ($written + ($written == 0))" | bc -l)
    printf '%-8s %5d %12d %10s %12.2f %14s\n' "$name" "$round" "$written" "$dropped" "$per" "$rate"
    total_written[$name]=$(( ${total_written[$name]:-0} + written ))
    total_dropped[$name]=$(( ${total_dropped[$name]:-0} + ${dropped//\?/0} ))
  done
done
echo "written: netkit ${total_written[netkit]}, tcpdump ${total_written[tcpdump]}," \
  "ratio $(echo "scale=2; ${total_written[netkit]} / ${total_written[tcpdump]}" | bc -l)"
echo "kernel drops: netkit ${total_dropped[netkit]}, tcpdump ${total_dropped[tcpdump]}"
