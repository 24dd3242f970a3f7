"""An ICMP echo responder that misbehaves on purpose, for ping's tests.

Run it in a network namespace whose kernel ignores echo requests
(net.ipv4.icmp_echo_ignore_all=1, net.ipv6.icmp.echo_ignore_all=1). It
answers every echo request on a raw socket, in one of these modes:

  dup         answer twice
  delay:SEC   answer after SEC seconds
  badsum      answer with a wrong ICMP checksum (IPv4 only)
  baddata     answer with byte 20 of the echo data changed

It prints "ready" once its sockets are open.
"""
import socket
import struct
import sys
import threading
import time


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def reply_for(request, reply_type, mode, v4):
    ident, seq = struct.unpack("!HH", request[4:8])
    data = bytearray(request[8:])
    if mode == "baddata" and len(data) > 20:
        data[20] ^= 0xFF
    header = struct.pack("!BBHHH", reply_type, 0, 0, ident, seq)
    if not v4:
        return header + bytes(data)  # the kernel fills ICMPv6 checksums
    total = checksum(header + bytes(data))
    if mode == "badsum":
        total ^= 0x0101
    return struct.pack("!BBHHH", reply_type, 0, total, ident, seq) + bytes(data)


def serve(sock, v4, mode):
    while True:
        packet, peer = sock.recvfrom(65535)
        icmp = packet[(packet[0] & 0x0F) * 4:] if v4 else packet
        if len(icmp) < 8 or icmp[0] != (8 if v4 else 128):
            continue
        reply = reply_for(icmp, 0 if v4 else 129, mode, v4)
        if mode.startswith("delay:"):
            delay = float(mode.split(":", 1)[1])
            threading.Timer(delay, sock.sendto, (reply, peer)).start()
            continue
        sock.sendto(reply, peer)
        if mode == "dup":
            sock.sendto(reply, peer)


def main():
    mode = sys.argv[1]
    v4 = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    v6 = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
    for sock, is_v4 in ((v4, True), (v6, False)):
        threading.Thread(target=serve, args=(sock, is_v4, mode), daemon=True).start()
    print("ready", flush=True)
    while True:
        time.sleep(60)


main()
