#!/usr/bin/python3
"""Answers that are hard to download, for tests of http steps (loopback only).

GET /list/<path>?<query>   {"data": [{"url": "http://<this server>/<path>?<query>"}]}: an API whose
                           answer points at an image (use with images_from = "data")
GET /png/length?bytes=N    a real PNG of about N bytes, with Content-Length
GET /png/chunked?bytes=N   the same, chunked (no Content-Length)
GET /png/slow?bytes=N&seconds=S   the same, sent steadily over S seconds
GET /png/stall?bytes=N     half of it, then nothing for a minute
GET /point?to=URL          {"data": [{"url": URL}]}
GET /redirect?to=URL       302 to URL
GET /hits                  {"<path>": count, ...}: the requests this server received
Writes its port to --port-file once listening.
"""
import argparse
import json
import os
import random
import struct
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


def png(approx_bytes):
    """A decodable RGB PNG of about approx_bytes: random pixels, stored without compression."""
    side = max(4, int((approx_bytes / 3) ** 0.5))
    rng = random.Random(side)
    raw = b"".join(b"\x00" + rng.randbytes(side * 3) for _ in range(side))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 0)) + chunk(b"IEND", b""))


hits = {}
lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def head(self, status, content_type, length=None, extra=None):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        if length is None:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(length))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.send_header("Connection", "close")
        self.end_headers()

    def json(self, status, body, extra=None):
        data = json.dumps(body).encode()
        self.head(status, "application/json", len(data), extra)
        self.wfile.write(data)

    def do_GET(self):
        url = urlsplit(self.path)
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        with lock:
            hits[url.path] = hits.get(url.path, 0) + 1
        try:
            self.route(url, q)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def route(self, url, q):
        path = url.path
        if path == "/hits":
            with lock:
                return self.json(200, dict(hits))
        if path.startswith("/list/"):
            target = "http://%s/%s" % (self.headers.get("Host"), path[len("/list/"):])
            if url.query:
                target += "?" + url.query
            return self.json(200, {"data": [{"url": target}]})
        if path == "/point":
            return self.json(200, {"data": [{"url": q["to"]}]})
        if path == "/redirect":
            return self.json(302, {}, {"Location": q["to"]})
        if path.startswith("/png/"):
            data = png(int(q.get("bytes", "1000")))
            kind = path[len("/png/"):]
            if kind == "length":
                self.head(200, "image/png", len(data))
                return self.wfile.write(data)
            if kind == "chunked":
                self.head(200, "image/png")
                for i in range(0, len(data), 65536):
                    part = data[i:i + 65536]
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                return self.wfile.write(b"0\r\n\r\n")
            if kind == "slow":
                self.head(200, "image/png", len(data))
                steps = 40
                step = (len(data) + steps - 1) // steps
                pause = float(q.get("seconds", "2")) / steps
                for i in range(0, len(data), step):
                    self.wfile.write(data[i:i + step])
                    self.wfile.flush()
                    time.sleep(pause)
                return
            if kind == "stall":
                self.head(200, "image/png", len(data))
                self.wfile.write(data[:len(data) // 2])
                self.wfile.flush()
                time.sleep(60)
                return
        return self.json(404, {"error": "no such route"})


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file", required=True)
    args = p.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(tmp, args.port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
