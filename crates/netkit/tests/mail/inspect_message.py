"""Parses a message file with python3's email package (not netkit's code)
and prints what the test checks, as JSON: top-level headers, and each leaf
part with its type, disposition, filename, Content-ID and text. With a
second argument, each leaf's decoded payload is written there as file N
(N counting every part, multiparts included), for byte-for-byte checks."""

import email
import email.policy
import os
import json
import sys

with open(sys.argv[1], "rb") as f:
    message = email.message_from_binary_file(f, policy=email.policy.default)

headers = {}
for name, value in message.items():
    headers.setdefault(name.lower(), []).append(str(value))

parts = []
for part in message.walk():
    if part.is_multipart():
        parts.append({"multipart": part.get_content_type()})
        continue
    payload = part.get_payload(decode=True) or b""
    entry = {
        "type": part.get_content_type(),
        "disposition": part.get_content_disposition(),
        "filename": part.get_filename(),
        "cid": part.get("Content-ID"),
        "len": len(payload),
    }
    if len(sys.argv) > 2:
        with open(os.path.join(sys.argv[2], str(len(parts))), "wb") as out:
            out.write(payload)
    if part.get_content_maintype() == "text":
        entry["text"] = part.get_content()
    parts.append(entry)

print(json.dumps({"headers": headers, "parts": parts, "defects": [str(d) for d in message.defects]}))
