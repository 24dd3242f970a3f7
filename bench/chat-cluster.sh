#!/usr/bin/env bash
# Chat as a cluster: one node against two, both on Redis (--bus) and
# PostgreSQL (--db), same load; run by `bench/chat.sh --cluster`.
#
# Redis and PostgreSQL are started here on free loopback ports in a temporary
# directory (PostgreSQL as nobody when run as root, as crates/testkit does).
# Run (a): one node with --bus and --db postgres. Run (b): two nodes, same
# flags, the same CLIENTS spread round-robin over both (`netkit chat bench
# --server A --server B`). Same RATES for both; each run's best sustained
# step is compared. Pinning: every server process (the nodes, Redis,
# PostgreSQL) shares SERVER_CPU and the load generator has LOAD_CPU, so on a
# 2-core machine two nodes get the same one core that one node had: the
# comparison measures what the bus adds per delivered message, not extra
# hardware. CPU per delivered message is reported per node and for Redis.
#
#   bench/chat.sh --cluster
#   CLIENTS=100 RATES=1,2,4 bench/chat.sh --cluster
set -euo pipefail
cd "$(dirname "$0")/.."

CLIENTS=${CLIENTS:-200}
RATES=${RATES:-0.5,1,2,3,4,5,7,10}
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-3s}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}

command -v taskset >/dev/null || { echo "taskset is missing (util-linux)" >&2; exit 1; }
command -v redis-server >/dev/null || { echo "redis-server is missing" >&2; exit 1; }
[ -x "$PG_BIN/initdb" ] || { echo "PostgreSQL is missing (no initdb under /usr/lib/postgresql/*/bin)" >&2; exit 1; }

wanted=$((CLIENTS * 2 + 256))
if [ "$(ulimit -n)" -lt "$wanted" ]; then ulimit -n "$(ulimit -Hn)" 2>/dev/null || true; fi

if [ -z "${NETKIT:-}" ]; then
  cargo build --release --quiet
  NETKIT=$PWD/target/release/netkit
fi

work=$(mktemp -d /tmp/netkit-chat-cluster.XXXXXX)
chmod 755 "$work"
pids=()
# PostgreSQL refuses to run as root: as root, its tools run as nobody.
pg_as=()
[ "$(id -u)" = 0 ] && pg_as=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
as_pg() { "${pg_as[@]}" "$@"; }
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  [ -d "$work/pg" ] && as_pg "$PG_BIN/pg_ctl" -D "$work/pg/data" -m immediate stop >/dev/null 2>&1 || true
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

echo "== redis-server and PostgreSQL (core $SERVER_CPU)"
redis_port=$(free_port)
taskset -c "$SERVER_CPU" redis-server --port "$redis_port" --save '' --appendonly no --bind 127.0.0.1 \
  >"$work/redis.log" 2>&1 &
redis_pid=$!
pids+=("$redis_pid")
wait_for_port "$redis_port"

mkdir "$work/pg"
export PGPASSWORD=netkit-bench-secret
echo "$PGPASSWORD" >"$work/pg/pwfile"
[ "$(id -u)" = 0 ] && chown -R nobody:nogroup "$work/pg"
as_pg "$PG_BIN/initdb" -D "$work/pg/data" -U netkit --auth-local=trust --auth-host=scram-sha-256 \
  --pwfile="$work/pg/pwfile" -E UTF8 --no-locale --no-sync >"$work/initdb.log" 2>&1
pg_port=$(free_port)
taskset -c "$SERVER_CPU" "${pg_as[@]}" "$PG_BIN/pg_ctl" -D "$work/pg/data" -l "$work/pg/log" -w -t 60 \
  -o "-c listen_addresses=127.0.0.1 -p $pg_port -k $work/pg -c fsync=off -c full_page_writes=off" start >/dev/null
as_pg "$PG_BIN/psql" -h "$work/pg" -p "$pg_port" -U netkit -d postgres -qc "CREATE DATABASE chat" >/dev/null

node() {
  local port=$1
  taskset -c "$SERVER_CPU" "$NETKIT" chat serve --bind "127.0.0.1:$port" \
    --bus "redis://127.0.0.1:$redis_port" --db "postgres://netkit@127.0.0.1:$pg_port/chat" \
    --rate 100000 --burst 100000 --queue 4096 --max-connections 100000 --login-timeout 10m \
    --register-per-address 100000 --register-overall 100000 \
    >>"$work/nodes.out" 2>>"$work/nodes.log" &
  pids+=("$!")
  wait_for_port "$port"
}

bench() {
  NETKIT_CHAT_PASSWORD=netkit-bench-password taskset -c "$LOAD_CPU" "$NETKIT" chat bench \
    --clients "$CLIENTS" --rate "$RATES" --duration "$DURATION" --warmup "$WARMUP" \
    --watch "redis=$redis_pid" "$@"
}

echo
echo "== (a) one node, --bus and --db postgres (core $SERVER_CPU), load on core $LOAD_CPU"
a=$(free_port)
node "$a"
one_pid=${pids[-1]}
bench --prefix one --server "127.0.0.1:$a" --server-pid "$one_pid" | tee "$work/one.bench"
kill "$one_pid"

echo
echo "== (b) two nodes, same settings (both on core $SERVER_CPU), clients round-robin over them"
b1=$(free_port); node "$b1"; pid1=${pids[-1]}
b2=$(free_port); node "$b2"; pid2=${pids[-1]}
bench --prefix two --server "127.0.0.1:$b1" --server "127.0.0.1:$b2" \
  --server-pid "$pid1" --server-pid "$pid2" | tee "$work/two.bench"

echo
echo "== one node against two, $CLIENTS clients"
python3 - "$work/one.bench" "$work/two.bench" <<'PY'
import re, sys
def steps(path):
    """Each step: rate -> (delivered/s, p50, p99, keeps up, {process: µs per delivered})."""
    found, last = {}, None
    for line in open(path):
        m = re.match(r"rate\s+([\d.]+)/s/client: .* delivered\s+(\d+)/s .* p50\s+([\d.]+) ms p99\s+([\d.]+) ms .* (keeps up|BEHIND)", line)
        if m:
            last = float(m[1])
            found[last] = [int(m[2]), float(m[3]), float(m[4]), m[5] == "keeps up", {}]
            m = re.search(r"server rss [\d.]+ MiB cpu \d+% \(([\d.]+) s per 1M", line)
            if m:
                found[last][4]["server"] = float(m[1])
            continue
        m = re.match(r"\s+(.+) \(pid \d+\): rss .*, cpu \d+% \(([\d.]+) µs per delivered\)", line)
        if m and last is not None:
            found[last][4][m[1]] = float(m[2])
    return found
def best(found):
    kept = [s for s in found.values() if s[3]]
    return max(kept, key=lambda s: s[0]) if kept else None
one, two = steps(sys.argv[1]), steps(sys.argv[2])
b1, b2 = best(one), best(two)
def show(name, b):
    if b is None:
        print(f"{name}: no step kept up"); return
    cost = ", ".join(f"{k} {v:.2f} µs" for k, v in b[4].items())
    print(f"{name}: {b[0]:,} delivered/s, p50 {b[1]:.1f} ms, p99 {b[2]:.1f} ms; CPU per delivered: {cost}")
show("one node ", b1)
show("two nodes", b2)
if b1 and b2:
    ratio, p99 = b2[0] / b1[0], b2[2] / max(b1[2], 0.1)
    print(f"best against best: two/one {ratio:.2f}x delivered/s at {p99:.2f}x the p99")
    # The target: the most two nodes deliver while their p99 stays within
    # 2x one node's p99 at its best, against one node's best. (At one
    # offered load both deliver the same while they keep up, so 0.7x can
    # only mean two nodes' best step under that latency bound.)
    bound = 2.0 * b1[2]
    within = [s for s in two.values() if s[3] and s[2] <= bound]
    if within:
        w = max(within, key=lambda s: s[0])
        ratio = w[0] / b1[0]
        met = ratio >= 0.7
        print(f"target: two nodes deliver {w[0]:,}/s at p99 {w[2]:.1f} ms (bound {bound:.1f} ms),"
              f" {ratio:.2f}x one node's best -> (>= 0.7x at p99 <= 2x) {'met' if met else 'NOT met'}")
    else:
        print(f"target: no step of two nodes kept up with p99 <= {bound:.1f} ms -> NOT met")
    # Projection. Each message is published once and received by every
    # other node, and delivered to C-1 clients whatever the node count. So
    # per delivered message: node CPU (summed over the nodes) = n1 + k*(N-1),
    # n1 measured with one node (which already publishes on the bus), k what
    # each further node adds (receiving, decoding, applying the others'
    # events), fitted from two nodes; Redis CPU grows with its subscribers:
    # r1 + (r2-r1)*(N-1). With each node and Redis on a core of its own, N
    # nodes deliver N*1e6/(n1 + k*(N-1)) per second, capped by Redis at
    # 1e6/(Redis µs per delivered). A two-point fit: a sketch, not a promise.
    n1 = sum(v for k, v in b1[4].items() if k.startswith("server"))
    n2 = sum(v for k, v in b2[4].items() if k.startswith("server"))
    r1, r2 = b1[4].get("redis", 0.0), b2[4].get("redis", 0.0)
    # A further node cannot make the others cheaper: a negative slope is
    # measurement noise, and taken as zero (so is a falling Redis cost).
    k = max(n2 - n1, 0.0)
    r2 = max(r2, r1)
    if k == 0.0:
        print(f"(two nodes measured {n2:.2f} µs against {n1:.2f}: the slope is within noise, taken as 0)")
    print(f"model: node CPU per delivered = {n1:.2f} µs + {k:.2f} µs per extra node; Redis {r1:.2f} µs at 1 node, {r2:.2f} µs at 2")
    print("projection, each node on its own core, clients spread evenly, Redis on its own core:")
    for nodes in (1, 2, 4, 8, 16):
        node_cost = n1 + k * (nodes - 1)
        redis_cost = r1 + (r2 - r1) * (nodes - 1)
        per_node = 1e6 / node_cost if node_cost > 0 else float("inf")
        total = nodes * per_node
        limit = 1e6 / redis_cost if redis_cost > 0 else float("inf")
        print(f"  {nodes:>2} nodes: {min(total, limit):>12,.0f} delivered/s"
              f" (nodes {total:,.0f}, Redis limit {limit:,.0f})")
PY
