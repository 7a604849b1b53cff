"""A webhook receiver outside Sprocket's code, for the webhook tests.

Listens on 127.0.0.1 (a free port, printed first as `port N`), and prints
one JSON line per request: its path, Sprocket's headers, the body, and
whether the signature verifies with the secret the test wrote for that path
into SECRETS_FILE (`{"/path": "secret"}`, read on every request).
Answers by path: `/flaky` fails an event's first two attempts with 500 and
then answers 204; `/down` always answers 503; anything else 200.
Verification is the documented scheme, written independently here:
`X-Sprocket-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
"""

import hashlib
import hmac
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SECRETS_FILE = sys.argv[1]
seen = {}
lock = threading.Lock()


def verifies(path, header, body):
    try:
        with open(SECRETS_FILE) as f:
            secret = json.load(f).get(path)
    except (OSError, ValueError):
        return False
    if not secret or not header:
        return False
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    t, v1 = parts.get("t"), parts.get("v1")
    if not t or not v1 or abs(time.time() - int(t)) > 300:
        return False
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256)
    return hmac.compare_digest(mac.hexdigest(), v1)


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        event_id = self.headers.get("X-Sprocket-Event-Id", "")
        with lock:
            n = seen.get((self.path, event_id), 0) + 1
            seen[(self.path, event_id)] = n
        if self.path == "/flaky":
            status = 500 if n <= 2 else 204
        elif self.path == "/down":
            status = 503
        else:
            status = 200
        record = {
            "path": self.path,
            "event_id": event_id,
            "event_type": self.headers.get("X-Sprocket-Event-Type"),
            "attempt": self.headers.get("X-Sprocket-Attempt"),
            "content_type": self.headers.get("Content-Type"),
            "verified": verifies(self.path, self.headers.get("X-Sprocket-Signature"), body),
            "body": json.loads(body or b"null"),
            "answered": status,
        }
        with lock:
            print(json.dumps(record), flush=True)
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(f"port {server.server_address[1]}", flush=True)
server.serve_forever()
