"""An SMTP server that answers from a script, for what no friendly server
does: refusing EHLO, refusing DATA, hanging up with 421, odd bytes in its
replies. Not netkit's code.

argv[1] is JSON: "greeting" is sent first; each other key is a command
verb (or "RCPT <address>" for one recipient) and its value the raw reply.
Verbs not named get "250 OK" (DATA 354, QUIT 221). After DATA's 354 the message is read up to
the lone dot and answered with "END". A reply starting with 421 closes the
connection. Serves one client; prints each command line it read on stdout
after `listening on`.
"""

import json
import socket
import sys

DEFAULTS = {"DATA": "354 go ahead\r\n", "QUIT": "221 bye\r\n"}
script = json.loads(sys.argv[1])
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(1)
print("listening on 127.0.0.1:%d" % listener.getsockname()[1], flush=True)
client, _ = listener.accept()
lines = client.makefile("rb")
client.sendall(script.get("greeting", "220 scripted.test ESMTP\r\n").encode())
while True:
    line = lines.readline()
    if not line:
        break
    command = line.rstrip(b"\r\n").decode("utf-8", "replace")
    print("C: " + command, flush=True)
    verb = command.split(" ", 1)[0].upper()
    address = command[command.find("<") :].split(" ")[0] if "<" in command else ""
    default = DEFAULTS.get(verb, "250 OK\r\n")
    reply = script.get("%s %s" % (verb, address), script.get(verb, default))
    client.sendall(reply.encode())
    if reply.startswith("421") or verb == "QUIT":
        break
    if verb == "DATA" and reply.startswith("354"):
        while lines.readline() not in (b".\r\n", b""):
            pass
        client.sendall(script.get("END", "250 queued\r\n").encode())
client.close()
