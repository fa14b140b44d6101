#!/usr/bin/env python3
"""Seeds a running creatord through its API for the HTTP benchmarks, and collects what a client
would have seen (cursors, ids, ETags) for the wrk scripts.

  seed.py PORT --creators N                      N creators (the body list_bench.sh has always used)
  seed.py PORT --creators N --image-creators K --images-per-creator M --lua-data FILE
                                                 and M images for each of K creators, then writes
                                                 FILE: a Lua table for bench/mix.lua
  seed.py PORT --reset-above ID                  deletes the creators with an id above ID (what a
                                                 mix run wrote), so every round starts alike

Prints the highest creator id seeded. Env: TOKEN (a bearer token to send, when the server has
--api-tokens). Only the standard library: keep-alive http.client connections, uploads from a few
threads.
"""
import argparse
import http.client
import json
import os
import random
import struct
import sys
import threading
import urllib.parse
import zlib

TAGS = ["portrait", "landscape", "ink", "neon", "retro", "pixel"]


class Client:
    def __init__(self, port):
        self.conn = http.client.HTTPConnection("127.0.0.1", port)
        self.auth = {"Authorization": "Bearer " + os.environ["TOKEN"]} if os.environ.get("TOKEN") else {}

    def call(self, method, path, body=None, headers=None, expect=(200,)):
        h = dict(self.auth)
        h.update(headers or {})
        self.conn.request(method, path, body, h)
        r = self.conn.getresponse()
        data = r.read()
        if r.status not in expect:
            sys.exit(f"seed: {method} {path} answered {r.status}: {data[:300]!r}")
        return r, data

    def json(self, method, path, doc=None, expect=(200,)):
        body = json.dumps(doc) if doc is not None else None
        headers = {"Content-Type": "application/json"} if doc is not None else {}
        return json.loads(self.call(method, path, body, headers, expect)[1])


def creator_body(i):
    return {"name": f"Creator Number {i}", "handle": f"creator{i}", "email": f"creator{i}@example.com",
            "bio": "Makes pictures of quiet places and loud colours.",
            "tags": TAGS[: 1 + i % len(TAGS)]}


def png(width, height, seed):
    """A real PNG of random RGB pixels (so every image has its own bytes, SHA-256 and ETag)."""
    rnd = random.Random(seed)
    raw = b"".join(b"\x00" + rnd.randbytes(width * 3) for _ in range(height))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 1)) + chunk(b"IEND", b""))


def upload_images(port, creator_ids, per_creator, threads=4):
    """Uploads per_creator images to each creator from a few connections; returns their ids."""
    jobs = [(c, k) for c in creator_ids for k in range(per_creator)]
    ids, lock = [], threading.Lock()

    def work(part):
        client = Client(port)
        for c, k in part:
            doc = json.loads(client.call("POST", f"/api/creators/{c}/images", png(96, 96, c * 1000 + k),
                                         {"Content-Type": "image/png"}, (201,))[1])
            with lock:
                ids.append(doc["id"])

    workers = [threading.Thread(target=work, args=(jobs[t::threads],)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    if len(ids) != len(jobs):
        sys.exit("seed: an upload thread failed")
    return sorted(ids)


def collect_cursors(client, limits):
    """Pages through the whole list at each limit, keeping every next_cursor a client was given."""
    cursors = []
    for limit in limits:
        cursor = None
        while True:
            path = f"/api/creators?limit={limit}" + (f"&cursor={cursor}" if cursor else "")
            cursor = client.json("GET", path)["next_cursor"]
            if not cursor:
                break
            cursors.append(cursor)
    return cursors


def collect_searches(client, n, rnd):
    """q values people type: parts of names and handles (common and rare), other letter case,
    two-letter ones (a scan), misses; and the next page of a search when it has one."""
    searches = []
    for _ in range(40):
        i = rnd.randrange(n)
        searches += [f"Number {i}", f"creator{i}", f"number {i // 10}", f"CREATOR{i // 100}", f"ber {i % 10}"]
    searches += ["ator", "Cr", "r9", "nobody here", "zzz", "Creator Number"]
    queries = []
    for q in searches:
        base = "/api/creators?q=" + urllib.parse.quote(q)
        queries.append(base)
        page = client.json("GET", base + "&limit=10")
        if page["next_cursor"]:
            queries.append(f"{base}&limit=10&cursor={page['next_cursor']}")
    return queries


def lua_string(s):
    if any(c in s for c in "\\\n\r") or not s.isascii():
        sys.exit(f"seed: unexpected text for the Lua data: {s!r}")
    return '"' + s.replace('"', '\\"') + '"'


def lua_list(values):
    return "{" + ",".join(lua_string(v) if isinstance(v, str) else str(v) for v in values) + "}"


def reset_above(client, max_id):
    """Deletes the creators newer than max_id (they are the first of the list, newest first)."""
    while True:
        newer = [c["id"] for c in client.json("GET", "/api/creators?limit=200")["items"] if c["id"] > max_id]
        if not newer:
            return
        for cid in newer:
            client.call("DELETE", f"/api/creators/{cid}", expect=(204, 404))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("--creators", type=int, default=0)
    ap.add_argument("--image-creators", type=int, default=0)
    ap.add_argument("--images-per-creator", type=int, default=3)
    ap.add_argument("--lua-data")
    ap.add_argument("--reset-above", type=int)
    args = ap.parse_args()
    client = Client(args.port)
    if args.reset_above is not None:
        reset_above(client, args.reset_above)
        return

    creator_ids = [client.json("POST", "/api/creators", creator_body(i), (201,))["id"] for i in range(args.creators)]
    print(max(creator_ids, default=0))
    if not args.lua_data:
        return

    rnd = random.Random(13)
    with_images = sorted(rnd.sample(creator_ids, min(args.image_creators, len(creator_ids))))
    image_ids = upload_images(args.port, with_images, args.images_per_creator)
    etags = [client.call("HEAD", f"/api/images/{i}/content")[0].getheader("ETag") for i in image_ids]
    if not all(etags):
        sys.exit("seed: an image answered without an ETag")
    limits = [7, 20, 50, 100, 200]
    with open(args.lua_data, "w") as f:
        f.write("-- written by bench/seed.py: what a client saw of the seeded server\nreturn {\n")
        f.write(f"  creators = {lua_list(creator_ids)},\n")
        f.write(f"  with_images = {lua_list(with_images)},\n")
        f.write(f"  images = {lua_list(image_ids)},\n")
        f.write(f"  etags = {lua_list(etags)},\n")
        f.write(f"  limits = {lua_list(limits)},\n")
        f.write(f"  cursors = {lua_list(collect_cursors(client, limits))},\n")
        f.write(f"  searches = {lua_list(collect_searches(client, len(creator_ids), rnd))},\n")
        f.write("}\n")


if __name__ == "__main__":
    main()
