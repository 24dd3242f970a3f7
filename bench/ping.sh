#!/usr/bin/env bash
# netkit ping against fping and iputils ping, on loopback, in one run:
#  1. a sweep of 10,000 loopback addresses (127.0.0.1 ... 127.0.39.16), one
#     probe each with a 1 s timeout: `netkit ping -c 1 -i 0` against
#     `fping -c 1 -i 0` (its fastest setting) with the same list; wall
#     times (median of BENCH_RUNS runs, alternating) and their ratio,
#     target <= 1.0;
#  2. the median round-trip time of 100 loopback probes, netkit against
#     iputils ping; target: within 20 us.
# Both programs are pinned to the same CPUs (BENCH_CPUS, default 1).
# Needs root: raw sockets, and intervals below 2 ms.
set -euo pipefail
cd "$(dirname "$0")/.."

cpus=${BENCH_CPUS:-1}
runs=${BENCH_RUNS:-5}
probes=${BENCH_PROBES:-100}

for tool in fping ping taskset python3; do
  command -v "$tool" >/dev/null || { echo "bench/ping.sh needs $tool" >&2; exit 2; }
done
if [ "$(id -u)" -ne 0 ]; then
  echo "bench/ping.sh needs root (raw sockets, -i 0)" >&2
  exit 2
fi

cargo build --release --quiet -p netkit
netkit=$PWD/target/release/netkit
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

python3 -c '
for n in range(1, 10001):
    print("127.0.%d.%d" % (n // 256, n % 256))' > "$work/targets"
count=$(wc -l < "$work/targets")
echo "== sweep: $count loopback addresses ($(head -1 "$work/targets") ... $(tail -1 "$work/targets")), pinned to CPU $cpus"

run_fping() {
  taskset -c "$cpus" fping -c 1 -i 0 -t 1000 -q -f "$work/targets" 2> "$work/fping.out" || true
}
run_netkit() {
  taskset -c "$cpus" "$netkit" ping -q -c 1 -i 0 -W 1 --file "$work/targets" > "$work/netkit.out" || true
}
millis() {
  local start end
  start=$(date +%s%N)
  "$@"
  end=$(date +%s%N)
  echo $(( (end - start) / 1000000 ))
}

: > "$work/fping.times"
: > "$work/netkit.times"
for _ in $(seq "$runs"); do
  millis run_fping >> "$work/fping.times"
  millis run_netkit >> "$work/netkit.times"
done
fping_replies=$(grep -c 'xmt/rcv/%loss = 1/1/0%' "$work/fping.out" || true)
netkit_replies=$(grep -cE '^\S+ +\S+ +1 +1 +0%' "$work/netkit.out" || true)

echo "== round trips: $probes probes to 127.0.0.1, 10 ms apart"
taskset -c "$cpus" ping -c "$probes" -i 0.01 127.0.0.1 > "$work/iputils.rtt"
taskset -c "$cpus" "$netkit" ping -c "$probes" -i 0.01 127.0.0.1 > "$work/netkit.rtt"

python3 - "$work" "$count" "$fping_replies" "$netkit_replies" <<'PY'
import re, statistics, sys
work, count, fping_replies, netkit_replies = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])

def times(name):
    return [int(line) for line in open(f"{work}/{name}.times")]

fping, netkit = times("fping"), times("netkit")
fping_median, netkit_median = statistics.median(fping), statistics.median(netkit)
print(f"fping  -c 1 -i 0 -t 1000: median {fping_median:7.0f} ms  runs {fping}  replies {fping_replies}/{count}")
print(f"netkit -c 1 -i 0 -W 1   : median {netkit_median:7.0f} ms  runs {netkit}  replies {netkit_replies}/{count}")
ratio = netkit_median / fping_median
print(f"sweep ratio netkit/fping: {ratio:.2f} (target <= 1.00: {'met' if ratio <= 1.0 else 'MISSED'})")

def rtts(name):
    text = open(f"{work}/{name}.rtt").read()
    return [float(value) for value in re.findall(r"time=([0-9.]+) ms", text)]

iputils, ours = rtts("iputils"), rtts("netkit")
difference = (statistics.median(ours) - statistics.median(iputils)) * 1000
print(f"iputils ping median RTT : {statistics.median(iputils) * 1000:7.1f} us over {len(iputils)} replies")
print(f"netkit ping median RTT  : {statistics.median(ours) * 1000:7.1f} us over {len(ours)} replies")
verdict = "met" if abs(difference) <= 20 else "MISSED"
print(f"median RTT difference   : {difference:+7.1f} us (target within 20 us: {verdict})")
PY
