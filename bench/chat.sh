#!/usr/bin/env bash
# Room fan-out: netkit chat serve against ngircd, same load shape, one run.
#
# CLIENTS clients (default 1000) join one room, then each sends RATE room
# messages per second; every message goes to every other client. The rate is
# raised step by step (RATES) until delivery falls behind (less than 98% of
# the expected deliveries, a client disconnected, or p99 latency over
# 500 ms); the highest rate that kept up is each server's result. Both
# servers run pinned to the same core (SERVER_CPU) with the load generator
# (`netkit chat bench`, speaking IRC to ngircd) on another (LOAD_CPU).
# ngircd runs in the foreground from bench/chat/ngircd.conf with flood
# penalties off (MaxPenaltyTime = 0); netkit's rate limit (and registration
# throttle, for the 1,000 accounts the clients register) is raised likewise,
# so both measure fan-out rather than throttling. The login timeout is
# raised too: the 1,000 registrations queue for Argon2 on the server's one
# core, which on a busy machine takes longer than the default 30 s.
#
#   bench/chat.sh                      # full run
#   CLIENTS=200 RATES=1,2 bench/chat.sh
#   bench/chat.sh --cluster            # one node against two (bench/chat-cluster.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = --cluster ]; then exec bench/chat-cluster.sh; fi

CLIENTS=${CLIENTS:-1000}
RATES=${RATES:-0.1,0.2,0.3,0.5,0.7,1,1.25,1.5,2,2.5,3,4,5}
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-3s}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
NGIRCD=${NGIRCD:-/usr/sbin/ngircd}

command -v taskset >/dev/null || { echo "taskset is missing (util-linux)" >&2; exit 1; }
if [ ! -x "$NGIRCD" ]; then
  echo "== installing ngircd"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ngircd >/dev/null
fi

# Each client is a socket on both sides, plus the servers' own.
wanted=$((CLIENTS * 2 + 256))
if [ "$(ulimit -n)" -lt "$wanted" ]; then
  ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
fi
if [ "$(ulimit -n)" -lt "$wanted" ]; then
  echo "need $wanted file descriptors, ulimit -n allows $(ulimit -n)" >&2
  exit 1
fi

cargo build --release --quiet
NETKIT=$PWD/target/release/netkit

work=$(mktemp -d /tmp/netkit-chat-bench.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_for_port() {
  for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "nothing listens on port $1" >&2
  return 1
}

bench() {
  # The generator's own password for its throwaway accounts.
  NETKIT_CHAT_PASSWORD=netkit-bench-password taskset -c "$LOAD_CPU" "$NETKIT" chat bench \
    --clients "$CLIENTS" --rate "$RATES" --duration "$DURATION" --warmup "$WARMUP" "$@"
}

echo "== netkit chat serve (core $SERVER_CPU), load on core $LOAD_CPU"
# The per-address limits stay at their defaults (64 connections, 120 new
# ones a minute): `netkit chat bench` connects each client from an address
# of its own in 127.0.0.0/8 (127.100.0.1, ...), as real users would.
port=$(free_port)
taskset -c "$SERVER_CPU" "$NETKIT" chat serve --bind "127.0.0.1:$port" --db "$work/chat.sqlite3" \
  --rate 100000 --burst 100000 --queue 4096 --max-connections 100000 --login-timeout 10m \
  --register-per-address 100000 --register-overall 100000 \
  >"$work/netkit.out" 2>"$work/netkit.log" &
netkit_pid=$!
pids+=("$netkit_pid")
wait_for_port "$port"
bench --server "127.0.0.1:$port" --server-pid "$netkit_pid" | tee "$work/netkit.bench"
kill "$netkit_pid"

echo
echo "== ngircd $("$NGIRCD" --version | head -1 | awk '{print $2}') (core $SERVER_CPU), load on core $LOAD_CPU"
port=$(free_port)
sed "s/@PORT@/$port/" bench/chat/ngircd.conf >"$work/ngircd.conf"
taskset -c "$SERVER_CPU" "$NGIRCD" --nodaemon --config "$work/ngircd.conf" \
  >"$work/ngircd.log" 2>&1 &
ngircd_pid=$!
pids+=("$ngircd_pid")
wait_for_port "$port"
bench --server "127.0.0.1:$port" --server-pid "$ngircd_pid" --irc | tee "$work/ngircd.bench"
kill "$ngircd_pid"

best() { grep '^best sustained:' "$1" | sed 's/^best sustained: //'; }
delivered() { best "$1" | awk '{print $1}'; }
p99() { best "$1" | sed -n 's/.*p99 \([0-9.]*\) ms.*/\1/p'; }

echo
echo "== highest sustained fan-out, $CLIENTS clients"
printf '%-8s %s\n' netkit "$(best "$work/netkit.bench")" ngircd "$(best "$work/ngircd.bench")"
n=$(delivered "$work/netkit.bench")
g=$(delivered "$work/ngircd.bench")
# p99 at each rate both servers ran, and at ngircd's best sustained rate.
echo
echo "== p99 latency per rate (ms), netkit vs ngircd"
python3 - "$work/netkit.bench" "$work/ngircd.bench" <<'PY'
import re, sys
def steps(path):
    found = {}
    for line in open(path):
        m = re.match(r"rate\s+([\d.]+)/s/client: .* delivered\s+(\d+)/s .* p99\s+([\d.]+) ms .* (keeps up|BEHIND)", line)
        if m:
            found[float(m[1])] = (float(m[3]), m[4] == "keeps up", int(m[2]))
    return found
netkit, ngircd = steps(sys.argv[1]), steps(sys.argv[2])
print(f"  {'rate':>5}  {'netkit':>14}  {'ngircd':>14}")
show = lambda step: "-" if step is None else f"{step[0]:.1f}{'' if step[1] else ' behind'}"
for rate in sorted(set(netkit) | set(ngircd)):
    print(f"  {rate:>5}  {show(netkit.get(rate)):>14}  {show(ngircd.get(rate)):>14}")
kept = [rate for rate, (_, ok, _) in ngircd.items() if ok]
if kept and max(kept) in netkit:
    rate = max(kept)
    ours, theirs = netkit[rate][0], ngircd[rate][0]
    verdict = "no worse" if ours <= theirs else "worse"
    print(f"at ngircd's best sustained rate ({rate}/s per client): netkit p99 {ours:.1f} ms, "
          f"ngircd {theirs:.1f} ms: {verdict}")
    # The target: netkit's most delivered at a p99 no worse than ngircd's best.
    within = [step for step in netkit.values() if step[1] and step[0] <= theirs]
    if within:
        best = max(within, key=lambda step: step[2])
        print(f"netkit's most at a p99 no worse than {theirs:.1f} ms: {best[2]:,} msg/s "
              f"(p99 {best[0]:.1f} ms), {best[2] / ngircd[rate][2]:.2f}x ngircd's {ngircd[rate][2]:,}")
PY
if [[ "$n" =~ ^[0-9]+$ && "$g" =~ ^[0-9]+$ && "$g" -gt 0 ]]; then
  awk -v n="$n" -v g="$g" -v np="$(p99 "$work/netkit.bench")" -v gp="$(p99 "$work/ngircd.bench")" 'BEGIN {
    printf "ratio netkit/ngircd: %.2fx messages delivered per second (p99 %s ms vs %s ms)\n", n / g, np, gp
  }'
fi
