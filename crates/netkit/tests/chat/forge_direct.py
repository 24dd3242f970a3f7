"""A chat user written from PROTOCOL.md alone, gone bad.

Usage: forge_direct.py HOST:PORT ME TARGET[,TARGET...] VICTIM

Registers ME (password from NETKIT_CHAT_PASSWORD) with its own Ed25519 key
and UDP port, waits until the targets and VICTIM are online, captures one
genuine direct message VICTIM sends to ME (and checks its signature, so the
documented format is what netkit really signs), then sends every target:
that captured datagram, a genuine message and its replay, a forgery in
VICTIM's name, an altered copy, garbage, a message from an unknown sender,
one signed for another session key, and finally a genuine "last" message.
Prints `ready`, `roster`, `verified ...` and `sent` as it goes, then stays
logged in until stdin closes.
"""

import base64
import json
import os
import socket
import struct
import sys

from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

DOMAIN = b"netkit-chat direct v1\0"


def signed_bytes(sender, to, to_key, seq, text):
    sender, to = sender.encode(), to.encode()
    return (
        DOMAIN
        + bytes([len(sender)]) + sender
        + bytes([len(to)]) + to
        + to_key
        + struct.pack(">Q", seq)
        + text.encode()
    )


def datagram(key, sender, to, to_key, seq, text):
    signature = key.sign(signed_bytes(sender, to, to_key, seq, text))
    return json.dumps({
        "type": "direct", "from": sender, "to": to, "seq": seq, "text": text,
        "sig": base64.b64encode(signature).decode(),
    }).encode()


def public_bytes(key):
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def main():
    host, port = sys.argv[1].rsplit(":", 1)
    me, targets, victim = sys.argv[2], sys.argv[3].split(","), sys.argv[4]
    key = Ed25519PrivateKey.generate()
    my_key = public_bytes(key)

    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    tcp = socket.create_connection((host, int(port)), timeout=30)
    lines = tcp.makefile("rb")

    def frame():
        line = lines.readline()
        if not line:
            sys.exit("the server closed the connection")
        return json.loads(line)

    assert frame()["type"] == "hello"
    tcp.sendall(json.dumps({
        "type": "register", "version": 1, "name": me,
        "password": os.environ["NETKIT_CHAT_PASSWORD"],
        "udp_port": udp.getsockname()[1],
        "key": base64.b64encode(my_key).decode(),
    }).encode() + b"\n")

    roster, pages = {}, []

    def apply(message):
        kind = message["type"]
        if kind == "users":
            pages.extend(message["users"])
            if not message.get("more"):
                roster.clear()
                roster.update({user["name"].lower(): user for user in pages})
                pages.clear()
        elif kind == "joined":
            roster[message["user"]["name"].lower()] = message["user"]
        elif kind == "left":
            roster.pop(message["name"].lower(), None)
        elif kind in ("error", "bye"):
            sys.exit(f"refused: {message}")

    welcome = frame()
    assert welcome["type"] == "welcome", welcome
    print("ready", flush=True)
    while not all(name in roster for name in targets + [victim]):
        apply(frame())
    print("roster", flush=True)

    udp.settimeout(30)
    captured, _ = udp.recvfrom(65535)
    genuine = json.loads(captured)
    victim_key = Ed25519PublicKey.from_public_bytes(base64.b64decode(roster[victim]["key"]))
    victim_key.verify(
        base64.b64decode(genuine["sig"]),
        signed_bytes(genuine["from"], genuine["to"], my_key, genuine["seq"], genuine["text"]),
    )
    print("verified", genuine["from"], genuine["text"], flush=True)

    seq = 0
    for target in targets:
        user = roster[target]
        to_key = base64.b64decode(user["key"])
        address, port = user["addr"].rsplit(":", 1)

        def send(payload):
            udp.sendto(payload, (address, int(port)))

        send(captured)
        seq += 1
        message = datagram(key, me, target, to_key, seq, f"genuine from {me}")
        send(message)
        send(message)
        send(datagram(key, victim, target, to_key, 1000 + seq, f"forged as {victim}"))
        altered = json.loads(message)
        altered["text"] = f"altered by {me}"
        send(json.dumps(altered).encode())
        send(b"\xff not a datagram at all")
        stranger = Ed25519PrivateKey.generate()
        send(datagram(stranger, "ghost", target, to_key, 1, "from nobody"))
        seq += 1
        send(datagram(key, me, target, bytes(32), seq, "for another key"))
        seq += 1
        send(datagram(key, me, target, to_key, seq, f"last from {me}"))
    print("sent", flush=True)
    sys.stdin.read()


if __name__ == "__main__":
    main()
