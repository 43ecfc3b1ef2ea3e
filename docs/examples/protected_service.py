#!/usr/bin/env python3
"""Another service that uses Ferrobase as its sign-in service (Python standard library only).

Clients sign in to Ferrobase (password, OTP or OAuth2, with any PocketBase SDK) and send the
token they got to this service as `Authorization: <token>` (or `Bearer <token>`). The service
asks Ferrobase whether the token is good with `POST /api/collections/<c>/auth-refresh`: 200
with the record means a valid token of a record the collection's auth rule still lets in;
401/403/404 means no. Nothing is verified here, so no secret is shared with this service,
and a token Ferrobase has revoked (password change, record deleted) stops working at once.
Answers are cached for a few seconds per token so that a busy service does not ask on every
request.

    FERROBASE_URL=http://127.0.0.1:8090 python3 docs/examples/protected_service.py 127.0.0.1:8095
    curl -H "Authorization: $TOKEN" http://127.0.0.1:8095/profile

Routes: GET /profile (the signed-in record's id, email and collection), GET /health.
Env: FERROBASE_URL, FERROBASE_COLLECTION (default users), TOKEN_CACHE_SECONDS (default 5).
"""
import json
import os
import sys
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FERROBASE_URL = os.environ.get("FERROBASE_URL", "http://127.0.0.1:8090").rstrip("/")
COLLECTION = os.environ.get("FERROBASE_COLLECTION", "users")
CACHE_SECONDS = float(os.environ.get("TOKEN_CACHE_SECONDS", "5"))
_cache = {}  # token -> (expires_at, record or None)


def who(token):
    """The auth record a Ferrobase token stands for, or None."""
    hit = _cache.get(token)
    if hit and hit[0] > time.monotonic():
        return hit[1]
    req = urllib.request.Request(
        f"{FERROBASE_URL}/api/collections/{COLLECTION}/auth-refresh",
        method="POST",
        headers={"Authorization": token, "Content-Type": "application/json"},
        data=b"{}",
    )
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            record = json.load(r)["record"]
    except urllib.error.HTTPError as e:
        if e.code >= 500:
            raise
        record = None  # 401, 403, 404: not a good token for this collection
    _cache[token] = (time.monotonic() + CACHE_SECONDS, record)
    return record


class Handler(BaseHTTPRequestHandler):
    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/health":
            return self.reply(200, {"ok": True})
        if self.path != "/profile":
            return self.reply(404, {"message": "not found"})
        token = self.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not token:
            return self.reply(401, {"message": "sign in first"})
        try:
            record = who(token)
        except (urllib.error.URLError, OSError):
            return self.reply(503, {"message": "the sign-in service is unreachable"})
        if record is None:
            return self.reply(401, {"message": "the token is not valid"})
        return self.reply(200, {"id": record["id"], "email": record.get("email", ""),
                                "collection": record["collectionName"]})

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    host, _, port = (sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:8095").rpartition(":")
    print(f"protected service on http://{host}:{port}, signing in with {FERROBASE_URL}", flush=True)
    ThreadingHTTPServer((host, int(port)), Handler).serve_forever()
