"""Socket clients for the connection-limit tests: one process holds the
connections that fill a server while a newcomer tries its luck, then prints
what happened as one JSON object. Loopback only: holders connect from
127.0.0.1, newcomers from 127.0.0.2 (another client to the server).

  clients.py http-idle HOST PORT COUNT TARGET
  clients.py http-per-client HOST PORT COUNT TARGET
  clients.py smtp-idle HOST PORT COUNT
  clients.py smtp-per-client HOST PORT COUNT
  clients.py smtp-rate HOST PORT COUNT
  clients.py chat-per-client HOST PORT COUNT
  clients.py chat-rate HOST PORT COUNT
  clients.py upper-per-client HOST PORT COUNT
"""

import http.client
import json
import socket
import sys
import time

HOLDER = "127.0.0.1"
NEWCOMER = "127.0.0.2"
WAIT = 10.0


def connect(host, port, source):
    sock = socket.create_connection((host, port), timeout=WAIT, source_address=(source, 0))
    return sock


def read_line(sock):
    """One line, or what came before the close ('' when closed at once)."""
    data = b""
    while not data.endswith(b"\n"):
        try:
            chunk = sock.recv(1)
        except (ConnectionResetError, socket.timeout):
            break
        if not chunk:
            break
        data += chunk
    return data.decode("utf-8", "replace")


def closed(sock):
    """Waits for the server to close `sock` (True) or send something (False)."""
    try:
        return sock.recv(4096) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def http_get(host, port, source, target):
    conn = http.client.HTTPConnection(host, port, timeout=WAIT, source_address=(source, 0))
    conn.request("GET", target)
    response = conn.getresponse()
    response.read()
    return conn, response


def http_idle(host, port, count, target):
    held = [http_get(host, port, HOLDER, target)[0] for _ in range(count)]
    started = time.monotonic()
    newcomer, response = http_get(host, port, NEWCOMER, target)
    elapsed = time.monotonic() - started
    # The oldest idle connection made room; the others still serve.
    oldest_closed = closed(held[0].sock)
    held[1].request("GET", target)
    second = held[1].getresponse()
    second.read()
    return {
        "status": response.status,
        "elapsed": elapsed,
        "oldest_closed": oldest_closed,
        "second_status": second.status,
    }


def http_per_client(host, port, count, target):
    held = [http_get(host, port, HOLDER, target)[0] for _ in range(count)]
    _, refused = http_get(host, port, HOLDER, target)
    _, other = http_get(host, port, NEWCOMER, target)
    return {
        "held": len(held),
        "status": refused.status,
        "retry_after": refused.getheader("Retry-After"),
        "other_status": other.status,
    }


def smtp_session(host, port, source):
    sock = connect(host, port, source)
    greeting = read_line(sock)
    return sock, greeting


def smtp_idle(host, port, count):
    held = []
    for _ in range(count):
        sock, greeting = smtp_session(host, port, HOLDER)
        assert greeting.startswith("220 "), greeting
        sock.sendall(b"EHLO holder.example\r\n")
        reply = read_line(sock)
        while reply[3:4] == "-":
            reply = read_line(sock)
        assert reply.startswith("250 "), reply
        held.append(sock)
    started = time.monotonic()
    _, greeting = smtp_session(host, port, NEWCOMER)
    elapsed = time.monotonic() - started
    # The oldest idle session was told why, then closed.
    told = read_line(held[0])
    return {
        "greeting": greeting,
        "elapsed": elapsed,
        "oldest_told": told,
        "oldest_closed": closed(held[0]),
    }


def chat_ping(host, port, source):
    """Connects and proves the server serves the connection (ping, pong);
    returns the socket and the first line the server sent."""
    sock = connect(host, port, source)
    sock.sendall(b'{"type":"ping","id":1}\n')
    return sock, read_line(sock)


def upper_echo(host, port, source):
    sock = connect(host, port, source)
    try:
        sock.sendall(b"hello\n")
    except (BrokenPipeError, ConnectionResetError):
        return sock, ""
    return sock, read_line(sock)


def per_client(session, host, port, count):
    """COUNT connections from one client, then one more from it (refused)
    and one from another client (served); `session` connects and returns
    the socket and the first line the server sent."""
    held = [session(host, port, HOLDER) for _ in range(count)]
    refused, words = session(host, port, HOLDER)
    _, other = session(host, port, NEWCOMER)
    return {
        "held": [line for _, line in held],
        "refused": words,
        "refused_closed": closed(refused),
        "other": other,
    }


def rate(session, host, port, count):
    """COUNT connections from one client, one after another, then one more
    from it (refused) and one from another client (served)."""
    lines = []
    for _ in range(count):
        sock, line = session(host, port, HOLDER)
        lines.append(line)
        sock.close()
    refused, words = session(host, port, HOLDER)
    _, other = session(host, port, NEWCOMER)
    return {
        "held": lines,
        "refused": words,
        "refused_closed": closed(refused),
        "other": other,
    }


def main():
    mode, host, port, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    rest = sys.argv[5:]
    scenarios = {
        "http-idle": lambda: http_idle(host, port, count, *rest),
        "http-per-client": lambda: http_per_client(host, port, count, *rest),
        "smtp-idle": lambda: smtp_idle(host, port, count),
        "smtp-per-client": lambda: per_client(smtp_session, host, port, count),
        "smtp-rate": lambda: rate(smtp_session, host, port, count),
        "chat-per-client": lambda: per_client(chat_ping, host, port, count),
        "chat-rate": lambda: rate(chat_ping, host, port, count),
        "upper-per-client": lambda: per_client(upper_echo, host, port, count),
    }
    print(json.dumps(scenarios[mode]()))


main()
