#!/usr/bin/env bash
# Cache-hit throughput: netkit proxy vs Varnish (default VCL) vs nginx
# proxy_cache, in front of one nginx origin serving a 1 KiB and a 1 MiB
# object with Cache-Control: max-age=3600. Each proxy is pinned to core 0,
# wrk to core 1; every object is fetched once first so wrk measures hits.
#
#   bench/proxy.sh                 # 10 s per run
#   DURATION=30s CONNECTIONS=100 ROUNDS=3 bench/proxy.sh
#
# Each cache runs ROUNDS times per object in alternating order; the best
# run of each counts.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-50}
ROUNDS=${ROUNDS:-2}
PROXY_CORE=${PROXY_CORE:-0}
CLIENT_CORE=${CLIENT_CORE:-1}

need=()
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx)
command -v varnishd >/dev/null || [ -x /usr/sbin/varnishd ] || need+=(varnish)
command -v wrk >/dev/null || need+=(wrk)
command -v curl >/dev/null || need+=(curl)
if [ ${#need[@]} -gt 0 ]; then
  echo "== installing ${need[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
export PATH="$PATH:/usr/sbin"

echo "== building netkit (release)"
cargo build --release --quiet -p netkit
netkit=$PWD/target/release/netkit

work=$(mktemp -d /tmp/netkit-bench-proxy.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_port() {
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing listens on port $1" >&2
  return 1
}

origin_port=$(free_port)
netkit_port=$(free_port)
varnish_port=$(free_port)
nginx_port=$(free_port)

mkdir -p "$work/www" "$work/nginx-origin" "$work/nginx-cache" "$work/netkit-cache"
# nginx workers run as an unprivileged user: they must be able to read.
chmod 755 "$work" "$work/www"
head -c 1024 /dev/urandom > "$work/www/1k"
head -c $((1024 * 1024)) /dev/urandom > "$work/www/1m"
chmod 644 "$work/www/1k" "$work/www/1m"

cat > "$work/origin.conf" <<CONF
worker_processes 1;
pid $work/origin.pid;
error_log $work/origin-error.log;
events { worker_connections 1024; }
http {
  access_log off;
  server {
    listen 127.0.0.1:$origin_port;
    root $work/www;
    location / { add_header Cache-Control "max-age=3600"; default_type application/octet-stream; }
  }
}
CONF

cat > "$work/cache.conf" <<CONF
worker_processes 1;
pid $work/cache.pid;
error_log $work/cache-error.log;
events { worker_connections 4096; }
http {
  access_log $work/nginx-access.log;
  proxy_cache_path $work/nginx-cache keys_zone=bench:10m max_size=1g;
  upstream origin { server 127.0.0.1:$origin_port; keepalive 32; }
  server {
    listen 127.0.0.1:$nginx_port;
    location / {
      proxy_cache bench;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_pass http://origin;
      add_header X-Cache \$upstream_cache_status;
    }
  }
}
CONF

echo "== starting the origin (nginx) and the three caches"
taskset -c "$CLIENT_CORE" nginx -c "$work/origin.conf" -p "$work/nginx-origin" -g 'daemon off;' 2>/dev/null &
pids+=($!)
# wrk's connections all come from 127.0.0.1, one client to the proxy: its
# per-client limit (256 by default) is raised to the global one (10,000) so
# a large CONNECTIONS measures serving, not refusing. The origin is nginx on
# this host, which the proxy refuses unless told otherwise.
taskset -c "$PROXY_CORE" "$netkit" proxy serve --bind "127.0.0.1:$netkit_port" \
  --max-connections-per-client 10000 --allow-localhost-origins \
  --cache-dir "$work/netkit-cache" --access-log "$work/netkit-access.log" 2>"$work/netkit.err" >/dev/null &
pids+=($!)
taskset -c "$PROXY_CORE" varnishd -F -n "$work/varnish" -a "127.0.0.1:$varnish_port" \
  -b "127.0.0.1:$origin_port" -s malloc,256m >"$work/varnish.log" 2>&1 &
pids+=($!)
taskset -c "$PROXY_CORE" nginx -c "$work/cache.conf" -p "$work/nginx-cache" -g 'daemon off;' 2>/dev/null &
pids+=($!)
for port in "$origin_port" "$netkit_port" "$varnish_port" "$nginx_port"; do wait_port "$port"; done

# netkit takes the lab's path form, so wrk needs no proxy support.
url_for() {
  case $1 in
    netkit) echo "http://127.0.0.1:$netkit_port/127.0.0.1:$origin_port/$2" ;;
    varnish) echo "http://127.0.0.1:$varnish_port/$2" ;;
    nginx) echo "http://127.0.0.1:$nginx_port/$2" ;;
  esac
}

echo "== warming every cache (one miss per object), checking the next request hits"
for name in netkit varnish nginx; do
  for object in 1k 1m; do
    curl -s -o /dev/null "$(url_for $name $object)"
    sleep 0.2
    headers=$(curl -s -D - -o /dev/null "$(url_for $name $object)")
    case $name in
      netkit) echo "$headers" | grep -qi '^x-cache: HIT' ;;
      varnish) echo "$headers" | grep -qiE '^x-varnish: [0-9]+ [0-9]+' ;;
      nginx) echo "$headers" | grep -qi '^x-cache: HIT' ;;
    esac || { echo "$name did not serve $object from cache:"; echo "$headers"; exit 1; }
  done
done

# Busy and total jiffies of one core, from /proc/stat.
core_ticks() {
  awk -v cpu="cpu$1" '$1 == cpu { print $2 + $3 + $4 + $7 + $8, $2 + $3 + $4 + $5 + $6 + $7 + $8 }' /proc/stat
}
# Percent busy between two core_ticks readings.
busy() { echo "$1 $2" | awk '{ printf "%.0f", 100 * ($3 - $1) / ($4 - $2) }'; }

declare -A rps cpu_us
run() {
  local name=$1 object=$2 out value proxy_before client_before proxy_busy client_busy per_hit
  proxy_before=$(core_ticks "$PROXY_CORE")
  client_before=$(core_ticks "$CLIENT_CORE")
  out=$(taskset -c "$CLIENT_CORE" wrk -t1 -c"$CONNECTIONS" -d"$DURATION" --latency "$(url_for "$name" "$object")")
  proxy_busy=$(busy "$proxy_before" "$(core_ticks "$PROXY_CORE")")
  client_busy=$(busy "$client_before" "$(core_ticks "$CLIENT_CORE")")
  value=$(echo "$out" | awk '/^Requests\/sec/ {print $2}')
  # The cache core's time per hit: what a cache costs when the client,
  # not the cache, sets the pace.
  per_hit=$(awk -v b="$proxy_busy" -v r="$value" 'BEGIN { printf "%.0f", b * 1e4 / r }')
  printf '  %-8s %-3s %12s req/s   p99 %-9s cache core %3s%% busy (%s us/hit), wrk core %3s%%\n' \
    "$name" "$object" "$value" "$(echo "$out" | awk '/ 99%/ {print $2}')" \
    "$proxy_busy" "$per_hit" "$client_busy"
  if [ -z "${cpu_us[$name/$object]:-}" ] || [ "$per_hit" -lt "${cpu_us[$name/$object]}" ]; then
    cpu_us[$name/$object]=$per_hit
  fi
  # The best of the rounds counts: on a shared machine noise only slows runs down.
  if awk -v a="$value" -v b="${rps[$name/$object]:-0}" 'BEGIN { exit !(a > b) }'; then
    rps[$name/$object]=$value
  fi
}

echo "== cache hits: wrk -t1 -c$CONNECTIONS -d$DURATION on core $CLIENT_CORE, caches on core $PROXY_CORE, $ROUNDS rounds"
for round in $(seq "$ROUNDS"); do
  # Alternate the order so no cache always runs in the same slot.
  if (( round % 2 )); then order="netkit varnish nginx"; else order="nginx varnish netkit"; fi
  for object in 1k 1m; do
    for name in $order; do run "$name" "$object"; done
  done
done

echo "== best of $ROUNDS rounds; ratio: netkit / the better of Varnish and nginx (target >= 1.0)"
for object in 1k 1m; do
  python3 - "$object" "${rps[netkit/$object]}" "${rps[varnish/$object]}" "${rps[nginx/$object]}" <<'PY'
import sys
obj, netkit, varnish, nginx = sys.argv[1], *map(float, sys.argv[2:])
best, who = max((varnish, "varnish"), (nginx, "nginx"))
print(f"  {obj:<3}  netkit {netkit:,.0f}  varnish {varnish:,.0f}  nginx {nginx:,.0f}  ->  {netkit / best:.2f}x {who}")
PY
done
# When wrk's core is the one at 100%, every cache is held to the client's
# pace and req/s ties; the cache core's time per hit still tells them apart.
echo "== cache core time per hit, lowest of $ROUNDS rounds (lower is better)"
for object in 1k 1m; do
  printf '  %-3s  netkit %s us  varnish %s us  nginx %s us\n' "$object" \
    "${cpu_us[netkit/$object]}" "${cpu_us[varnish/$object]}" "${cpu_us[nginx/$object]}"
done
echo "origin requests served (should be 2 per cache: the warm-up misses):"
grep -c . "$work/netkit-access.log" >/dev/null && grep -c "TCP_MISS" "$work/netkit-access.log" | sed 's/^/  netkit misses: /'
