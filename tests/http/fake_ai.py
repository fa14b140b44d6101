#!/usr/bin/python3
"""A stand-in for an AI API, for tests and the README example (loopback only).

POST /v1/images/generations      OpenAI-style: {"data": [{"b64_json": <png>}]} (checks the bearer key)
POST /v1/async/generations       {"status": "queued", "poll_url": ...}; GET the poll URL: running twice, then succeeded
POST|GET /flaky/<key>            500 twice per key, then 200
POST|GET /ratelimited/<key>      429 with Retry-After: 1 once per key, then 200
GET /hang                        never answers in time
GET /big                         a 5 MB JSON response
POST /echo                       the request body and Authorization header back
Writes its port to --port-file once listening.
"""
import argparse
import base64
import json
import os
import struct
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def png(width, height, rgb):
    raw = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


counts = {}
lock = threading.Lock()


def bump(key):
    with lock:
        counts[key] = counts.get(key, 0) + 1
        return counts[key]


class Handler(BaseHTTPRequestHandler):
    api_key = None

    def log_message(self, *args):
        pass

    def reply(self, status, body, headers=None):
        data = json.dumps(body).encode() if not isinstance(body, bytes) else body
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        try:
            return json.loads(raw or b"{}")
        except ValueError:
            return None

    def route(self, method):
        path = self.path
        if path == "/v1/images/generations" and method == "POST":
            if self.api_key and self.headers.get("Authorization") != "Bearer " + self.api_key:
                return self.reply(401, {"error": {"message": "bad key"}})
            req = self.body() or {}
            w, h = (int(x) for x in str(req.get("size", "64x64")).split("x"))
            image = base64.b64encode(png(min(w, 256), min(h, 256), (200, 80, 120))).decode()
            return self.reply(200, {"created": int(time.time()), "prompt": req.get("prompt"), "data": [{"b64_json": image}]})
        if path == "/v1/async/generations" and method == "POST":
            job = "job%d" % bump("async")
            host = self.headers.get("Host")
            return self.reply(202, {"id": job, "status": "queued", "poll_url": "http://%s/v1/async/%s" % (host, job)})
        if path.startswith("/v1/async/") and method == "GET":
            n = bump(path)
            if n < 3:
                return self.reply(200, {"status": "running"})
            image = base64.b64encode(png(8, 8, (10, 200, 10))).decode()
            return self.reply(200, {"status": "succeeded", "images": [{"base64": image}]})
        if path.startswith("/flaky/"):
            n = bump(path)
            return self.reply(500, {"error": "flaky"}) if n <= 2 else self.reply(200, {"ok": True, "calls": n})
        if path.startswith("/ratelimited/"):
            n = bump(path)
            if n == 1:
                return self.reply(429, {"error": "slow down"}, {"Retry-After": "1"})
            return self.reply(200, {"ok": True, "calls": n})
        if path == "/hang":
            time.sleep(60)
            return self.reply(200, {})
        if path == "/big":
            return self.reply(200, {"blob": "x" * (5 << 20)})
        if path == "/echo":
            return self.reply(200, {"body": self.body(), "authorization": self.headers.get("Authorization")})
        if path.startswith("/status/"):
            return self.reply(int(path.split("/")[2]), {"status": path})
        return self.reply(404, {"error": "no such route"})

    def do_GET(self):
        self.route("GET")

    def do_POST(self):
        self.route("POST")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file", required=True)
    p.add_argument("--api-key")
    args = p.parse_args()
    Handler.api_key = args.api_key
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(tmp, args.port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
