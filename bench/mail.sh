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
#   NETKIT=target/release/netkit bench/mail.sh   # no build
set -euo pipefail
cd "$(dirname "$0")/.."

MESSAGES=${MESSAGES:-20000}
SESSIONS=${SESSIONS:-20}
SIZE=${SIZE:-512}
STORE=${STORE:-/tmp}

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

# Sends MESSAGES to 127.0.0.1:$1 and prints messages per second.
send() {
  local start end
  start=$(date +%s.%N)
  smtp-source -d -s "$SESSIONS" -m "$MESSAGES" -l "$SIZE" \
    -f bench@example.org -t inbox@example.org -M bench.example "127.0.0.1:$1" >/dev/null
  end=$(date +%s.%N)
  python3 -c "print(f'{$MESSAGES / ($end - $start):.0f}')"
}

echo "== Postfix smtp-sink (discards)"
sink_port=$(free_port)
smtp-sink -u nobody "127.0.0.1:$sink_port" 256 &
pids+=($!)
wait_port "$sink_port"
postfix_rate=$(send "$sink_port")
echo "smtp-sink: $postfix_rate msgs/s"

echo "== netkit mail sink (Maildir in $run, indexed, web inbox on)"
smtp_port=$(free_port)
web_port=$(free_port)
RUST_LOG=warn "$netkit" mail sink --bind "127.0.0.1:$smtp_port" --web "127.0.0.1:$web_port" \
  --no-tls --max-messages-per-session "$MESSAGES" --maildir "$run/maildir" >/dev/null &
netkit_pid=$!
pids+=("$netkit_pid")
wait_port "$smtp_port"
wait_port "$web_port"
netkit_rate=$(send "$smtp_port")
echo "netkit:    $netkit_rate msgs/s"

stored=$(find "$run/maildir/new" -type f | wc -l)
indexed=$(curl -s "http://127.0.0.1:$web_port/api/v1/messages?limit=1" | python3 -c 'import json, sys; print(json.load(sys.stdin)["Total"])')
rss_kib=$(awk '/^VmRSS/ { print $2 }' "/proc/$netkit_pid/status")

echo
echo "messages sent:      $MESSAGES over $SESSIONS sessions, $SIZE bytes each"
echo "netkit stored:      $stored files, $indexed indexed"
echo "smtp-sink:          $postfix_rate msgs/s (discards)"
echo "netkit mail sink:   $netkit_rate msgs/s (Maildir + index)"
python3 -c "print(f'ratio netkit/smtp-sink: {$netkit_rate / $postfix_rate:.2f}')"
echo "netkit RSS with $indexed messages: $((rss_kib / 1024)) MiB ($rss_kib KiB)"
