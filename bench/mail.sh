#!/usr/bin/env bash
# Receiving mail: `netkit mail sink` (every message fsynced into a Maildir
# and indexed in SQLite, the web inbox on) against Postfix's smtp-sink
# (which discards what it receives), side by side in one run.
#
# Postfix's smtp-source sends MESSAGES small messages over SESSIONS
# parallel SMTP sessions to each. Reported: messages/s for both, the ratio
# netkit/smtp-sink, and netkit's resident memory once it holds every
# message (after a listing through the API, which reads the index).
#
#   bench/mail.sh                       # 20,000 messages over 20 sessions
#   MESSAGES=5000 SESSIONS=10 bench/mail.sh
#   STORE=/dev/shm bench/mail.sh        # the Maildir in memory, not on disk
#   ROUNDS=5 bench/mail.sh              # alternating rounds (default 3)
#   NETKIT=target/release/netkit bench/mail.sh   # no build
set -euo pipefail
cd "$(dirname "$0")/.."

MESSAGES=${MESSAGES:-20000}
SESSIONS=${SESSIONS:-20}
SIZE=${SIZE:-512}
STORE=${STORE:-/tmp}
ROUNDS=${ROUNDS:-3}

need() {
  command -v "$1" >/dev/null && return
  echo "== installing $2"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$2" >/dev/null
}
need smtp-source postfix
need smtp-sink postfix
need curl curl

# NETKIT=path/to/netkit skips the build (a release binary already built).
if [ -z "${NETKIT:-}" ]; then
  echo "== building netkit (release)"
  cargo build --release --quiet -p netkit
fi
netkit=${NETKIT:-$PWD/target/release/netkit}

run=$(mktemp -d "$STORE/netkit-bench-mail.XXXXXX")
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$run"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_port() {
  for _ in $(seq 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return
    sleep 0.05
  done
  echo "nothing listens on port $1" >&2
  exit 1
}

# CPU time of process $1 in clock ticks (user + system).
ticks() {
  awk '{ print $14 + $15 }' "/proc/$1/stat"
}

# Sends MESSAGES to 127.0.0.1:$1 with server process $2; prints
# "messages/s CPU-µs-per-message" for that server.
send() {
  local start end before after
  before=$(ticks "$2")
  start=$(date +%s.%N)
  smtp-source -d -s "$SESSIONS" -m "$MESSAGES" -l "$SIZE" \
    -f bench@example.org -t inbox@example.org -M bench.example "127.0.0.1:$1" >/dev/null
  end=$(date +%s.%N)
  after=$(ticks "$2")
  python3 -c "print(f'{$MESSAGES / ($end - $start):.0f} {($after - $before) * 10000 / $MESSAGES:.0f}')"
}

# Rounds alternate the two servers, so a slow minute on this shared
# machine falls on both; the medians are what to quote. Every round's
# Maildir is kept until the end: deleting 20,000 files between rounds
# would make the next round's file creation slower (ext4 skips inodes
# freed in the last minutes when it allocates new ones).
echo "== Postfix smtp-sink (discards)"
sink_port=$(free_port)
smtp-sink -u nobody "127.0.0.1:$sink_port" 256 &
sink_pid=$!
pids+=("$sink_pid")
wait_port "$sink_port"

postfix_rates=()
postfix_cpus=()
netkit_rates=()
netkit_cpus=()
for round in $(seq "$ROUNDS"); do
  read -r rate cpu < <(send "$sink_port" "$sink_pid")
  postfix_rates+=("$rate")
  postfix_cpus+=("$cpu")
  echo "round $round smtp-sink: $rate msgs/s, $cpu µs CPU per message"

  smtp_port=$(free_port)
  web_port=$(free_port)
  maildir="$run/maildir-$round"
  RUST_LOG=warn "$netkit" mail sink --bind "127.0.0.1:$smtp_port" --web "127.0.0.1:$web_port" \
    --no-tls --max-messages-per-session "$MESSAGES" --maildir "$maildir" >/dev/null &
  netkit_pid=$!
  pids+=("$netkit_pid")
  wait_port "$smtp_port"
  wait_port "$web_port"
  read -r rate cpu < <(send "$smtp_port" "$netkit_pid")
  netkit_rates+=("$rate")
  netkit_cpus+=("$cpu")
  stored=$(find "$maildir/new" -type f | wc -l)
  indexed=$(curl -s "http://127.0.0.1:$web_port/api/v1/messages?limit=1" | python3 -c 'import json, sys; print(json.load(sys.stdin)["Total"])')
  rss_kib=$(awk '/^VmRSS/ { print $2 }' "/proc/$netkit_pid/status")
  echo "round $round netkit:    $rate msgs/s, $cpu µs CPU per message; $stored stored, $indexed indexed, RSS $((rss_kib / 1024)) MiB"
  if [ "$stored" != "$MESSAGES" ] || [ "$indexed" != "$MESSAGES" ]; then
    echo "netkit lost messages: $stored stored, $indexed indexed of $MESSAGES" >&2
    exit 1
  fi
  kill "$netkit_pid"
  wait "$netkit_pid" 2>/dev/null || true
done

median() {
  printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
postfix_rate=$(median "${postfix_rates[@]}")
netkit_rate=$(median "${netkit_rates[@]}")

echo
echo "messages sent:      $MESSAGES over $SESSIONS sessions, $SIZE bytes each, $ROUNDS rounds"
echo "smtp-sink:          median $postfix_rate msgs/s (discards); rounds ${postfix_rates[*]}; µs CPU/msg ${postfix_cpus[*]}"
echo "netkit mail sink:   median $netkit_rate msgs/s (Maildir + index); rounds ${netkit_rates[*]}; µs CPU/msg ${netkit_cpus[*]}"
python3 -c "print(f'ratio of medians netkit/smtp-sink: {$netkit_rate / $postfix_rate:.2f}')"
echo "netkit RSS with $MESSAGES messages (last round): $((rss_kib / 1024)) MiB ($rss_kib KiB)"
