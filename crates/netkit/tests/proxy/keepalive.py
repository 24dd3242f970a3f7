"""An HTTP/1.1 keep-alive origin for the proxy's interoperability tests,
python3 standard library only, written the way small origins are: headers
and body in separate writes, Nagle left on.

GET /lm: `Cache-Control: max-age=1` and `Last-Modified` only (no ETag); a
matching If-Modified-Since gets a 304 that names no validator. GET /nostore:
`Cache-Control: no-store`. POST echoes its body. GET /_stats (never counted)
returns requests and conditional requests per path as JSON.
"""
import http.server, json, threading, time

lock = threading.Lock()
counts = {}
conditional = {}
MODIFIED = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() - 3600))


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send(self, status, headers, body):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self):
        if self.path == "/_stats":
            with lock:
                body = json.dumps({"counts": counts, "conditional": conditional}).encode()
            return self.send(200, [("Content-Type", "application/json")], body)
        ims = self.headers.get("If-Modified-Since")
        with lock:
            counts[self.path] = counts.get(self.path, 0) + 1
            if ims:
                conditional[self.path] = conditional.get(self.path, 0) + 1
        if self.path == "/lm":
            if ims == MODIFIED:
                self.send_response(304)
                self.send_header("Cache-Control", "max-age=1")
                self.end_headers()
                return
            return self.send(200, [("Cache-Control", "max-age=1"), ("Last-Modified", MODIFIED),
                                   ("Content-Type", "text/plain")], b"the full body of /lm\n")
        if self.path == "/nostore":
            return self.send(200, [("Cache-Control", "no-store"), ("Content-Type", "text/plain")],
                             b"not for keeping " * 8)
        self.send(404, [], b"no such path\n")

    do_HEAD = do_GET

    def do_POST(self):
        data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send(200, [("Content-Type", "text/plain")], b"got " + data)


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
print("listening on 127.0.0.1:%d" % server.server_address[1], flush=True)
server.serve_forever()
