"""An origin server for the proxy tests, python3 standard library only.

Query parameters choose the response: cc (Cache-Control), etag, lm
(Last-Modified), age, cookie (Set-Cookie), expires, location, vary (a
request header to vary on and echo), extra (an X-Extra header), links (that
many Link header lines), status, size (bytes of body), delay (seconds
before answering), stall (send half the body, then nothing for that many
seconds), chunked, hop (send hop-by-hop headers). A 304 carries the same
headers but Content-Type. GET /_stats (never counted) returns what was seen:
requests per path, the headers of the last request per path, and the number
of distinct client connections. GET /_set?path=P&etag=E&body=B changes what
path P answers. argv[1], if given, is a TLS certificate+key PEM: serve HTTPS.
"""
import http.server, json, ssl, struct, sys, threading, time, urllib.parse, zlib

lock = threading.Lock()
counts = {}
headers_seen = {}
connections = set()
overrides = {}


PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Through the proxy</title>
<style>body{font-family:sans-serif;margin:20px} img{margin:8px;border:1px solid #333}</style>
</head><body><h1>Three squares through netkit proxy</h1>
<img src="/img/red.png?cc=max-age=300" width="120" height="120" alt="red">
<img src="/img/green.png?cc=max-age=300" width="120" height="120" alt="green">
<img src="/img/blue.png?cc=max-age=300" width="120" height="120" alt="blue">
<p id="done">All three images come from the origin on the first load and from the cache after.</p>
</body></html>
"""

COLOURS = {"red": (220, 40, 40), "green": (40, 170, 60), "blue": (40, 80, 220)}


def png(rgb, size=60):
    """A solid square PNG, built by hand: zlib and struct are enough."""
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff))
    row = b"\x00" + bytes(rgb) * size
    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(row * size))
            + chunk(b"IEND", b""))


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, headers, body, send_body=True):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        if not any(name.lower() == "transfer-encoding" for name, _ in headers):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def handle_any(self):
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        length = int(self.headers.get("Content-Length") or 0)
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    break
                data += self.rfile.read(size)
                self.rfile.readline()
        else:
            data = self.rfile.read(length) if length else b""
        if url.path == "/_stats":
            with lock:
                body = json.dumps({"counts": counts, "headers": headers_seen,
                                   "connections": len(connections)}).encode()
            return self.reply(200, [("Content-Type", "application/json")], body)
        if url.path == "/_set":
            with lock:
                overrides[query["path"]] = query
            return self.reply(200, [], b"ok")
        with lock:
            counts[self.path] = counts.get(self.path, 0) + 1
            headers_seen[self.path] = {k.lower(): v for k, v in self.headers.items()}
            connections.add(self.client_address)
            override = dict(overrides.get(url.path, {}))
        query.update({k: v for k, v in override.items() if k != "path"})
        if "delay" in query:
            time.sleep(float(query["delay"]))
        status = int(query.get("status", 200))
        headers = [("Content-Type", "text/plain; charset=utf-8")]
        if "cc" in query:
            headers.append(("Cache-Control", query["cc"]))
        etag = query.get("etag")
        if etag:
            headers.append(("ETag", '"%s"' % etag))
        if "lm" in query:
            headers.append(("Last-Modified", query["lm"]))
        if "cookie" in query:
            headers.append(("Set-Cookie", "session=%s; Path=/" % query["cookie"]))
        if "location" in query:
            headers.append(("Location", query["location"]))
        if "expires" in query:
            headers.append(("Expires", query["expires"]))
        if "age" in query:
            headers.append(("Age", query["age"]))
        if "vary" in query:
            headers.append(("Vary", query["vary"]))
        if "extra" in query:
            headers.append(("X-Extra", query["extra"]))
        for n in range(int(query.get("links", 0))):
            headers.append(("Link", "</%d.css>; rel=preload" % n))
        if "hop" in query:
            headers += [("Connection", "X-Internal"), ("X-Internal", "secret"),
                        ("Keep-Alive", "timeout=5"), ("X-End-To-End", "kept")]
        inm = self.headers.get("If-None-Match")
        ims = self.headers.get("If-Modified-Since")
        if (etag and inm and '"%s"' % etag in inm) or (not etag and ims and ims == query.get("lm")):
            self.send_response(304)
            for name, value in headers[1:]:
                self.send_header(name, value)
            self.end_headers()
            return
        if url.path == "/page.html":
            headers[0] = ("Content-Type", "text/html; charset=utf-8")
            body = PAGE.encode()
        elif url.path.startswith("/img/") and url.path[5:-4] in COLOURS:
            headers[0] = ("Content-Type", "image/png")
            body = png(COLOURS[url.path[5:-4]])
        elif self.command in ("POST", "PUT", "PATCH"):
            body = b"got " + data
        elif "size" in query:
            pattern = b"0123456789abcdefghijklmnopqrstuvwxyz\n"
            size = int(query["size"])
            body = (pattern * (size // len(pattern) + 1))[:size]
        elif "body" in query:
            body = query["body"].encode()
        else:
            body = ("%s %s" % (self.command, url.path)).encode()
        if "vary" in query:
            body += (" %s=%s" % (query["vary"], self.headers.get(query["vary"], ""))).encode()
        if "stall" in query:
            # Announce twice the body, send half, then go quiet.
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(2 * len(body)))
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()
            time.sleep(float(query["stall"]))
            return
        if "chunked" in query:
            headers.append(("Transfer-Encoding", "chunked"))
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                for start in range(0, len(body), 4096):
                    piece = body[start:start + 4096]
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                self.wfile.write(b"0\r\n\r\n")
            return
        self.reply(status, headers, body, self.command != "HEAD")

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = handle_any


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128


server = Server(("127.0.0.1", 0), Handler)
scheme = "http"
if len(sys.argv) > 1:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(sys.argv[1])
    server.socket = context.wrap_socket(server.socket, server_side=True)
    scheme = "https"
print("listening on %s://127.0.0.1:%d/" % (scheme, server.server_address[1]), flush=True)
server.serve_forever()
