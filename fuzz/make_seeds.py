#!/usr/bin/env python3
"""Writes the seed corpus of every fuzz target into fuzz/corpus/<target>/ (checked in; rerun
after changing it). Seeds are small valid inputs in each target's language: libFuzzer and the
replay driver mutate from here."""
import base64, os, struct, zlib, shutil, pathlib

root = pathlib.Path(__file__).resolve().parent / "corpus"
TOKEN = "fuzz-token-0123456789abcdef"  # the request target's configured token


def write(target, name, data):
    d = root / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data if isinstance(data, bytes) else data.encode())


def png(w, h):
    raw = b"".join(b"\0" + b"\x80\x40\x20" * w for _ in range(h))
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def jpeg(w, h):
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 17, 8, h, w, 3) + b"\x01\x22\x00\x02\x11\x01\x03\x11\x01"
    return b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + sof + b"\xff\xd9"


def webp(w, h):
    vp8x = b"VP8X" + struct.pack("<I", 10) + b"\0\0\0\0" + (w - 1).to_bytes(3, "little") + (h - 1).to_bytes(3, "little")
    return b"RIFF" + struct.pack("<I", 4 + len(vp8x)) + b"WEBP" + vp8x


def req(method, target, body=b"", headers=(), token=True):
    lines = [f"{method} {target} HTTP/1.1", "Host: localhost"]
    if token:
        lines.append(f"Authorization: Bearer {TOKEN}")
    lines += list(headers)
    if isinstance(body, str):
        body = body.encode()
    if body and not any(h.lower().startswith("transfer-encoding") for h in headers):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


shutil.rmtree(root, ignore_errors=True)
J = ["Content-Type: application/json"]
creator = '{"name":"Ada","handle":"ada","email":"ada@example.com","bio":"hi","tags":["a","b"]}'
requests = {
    "healthz": req("GET", "/healthz", token=False),
    "readyz": req("GET", "/readyz", token=False),
    "list": req("GET", "/api/creators?limit=5&q=ad", token=False),
    "list-cursor": req("GET", "/api/creators?cursor=" + base64.urlsafe_b64encode(b"v1:5").decode().rstrip("="), token=False),
    "create": req("POST", "/api/creators", creator, J),
    "create-anon": req("POST", "/api/creators", creator, J, token=False),
    "patch": req("PATCH", "/api/creators/1", '{"bio":null,"tags":[]}', J),
    "delete": req("DELETE", "/api/creators/2"),
    "get": req("GET", "/api/creators/1", token=False),
    "upload": req("POST", "/api/creators/1/images", png(3, 2), ["Content-Type: image/png"]),
    "images": req("GET", "/api/creators/1/images?limit=2", token=False),
    "image-content": req("GET", "/api/images/1/content", headers=['If-None-Match: "abc"'], token=False),
    "generate": req("POST", "/api/creators/1/generate?wait=1", '{"pipeline":"diagnostic","params":{"sleep_ms":1}}',
                    J + ["Idempotency-Key: k1"]),
    "jobs": req("GET", "/api/jobs?state=succeeded&limit=3", token=False),
    "job": req("GET", "/api/jobs/1", token=False),
    "events": req("GET", "/api/jobs/1/events", headers=["Last-Event-ID: 2", "Accept: text/event-stream"], token=False),
    "cancel": req("POST", "/api/jobs/1/cancel"),
    "retry": req("POST", "/api/jobs/1/retry"),
    "pipelines": req("GET", "/api/pipelines", token=False),
    "email": req("POST", "/api/send-email", '{"to":["Bob <bob@example.com>"],"subject":"Hi","text":"x","html":"<b>x</b>"}', J),
    "emails": req("GET", "/api/emails?limit=1"),
    "queues": req("GET", "/api/queues", token=False),
    "pause": req("POST", "/api/queues/default/pause"),
    "schedules": req("GET", "/api/schedules", token=False),
    "openapi": req("GET", "/openapi.json", token=False),
    "metrics": req("GET", "/metrics"),
    "head": req("HEAD", "/api/creators/1", token=False),
    "options": req("OPTIONS", "/api/creators", headers=["Origin: http://a.example", "Access-Control-Request-Method: POST"],
                   token=False),
    "chunked": req("POST", "/api/creators", b"", J + ["Transfer-Encoding: chunked"])
               + b"a\r\n" + creator[:10].encode() + b"\r\n" + f"{len(creator) - 10:x}".encode() + b"\r\n"
               + creator[10:].encode() + b"\r\n0\r\n\r\n",
    "pipelined": req("GET", "/healthz", token=False) + req("GET", "/api/creators/1", token=False),
    "expect": req("POST", "/api/creators", creator, J + ["Expect: 100-continue"]),
}
for name, data in requests.items():
    write("request", name, data)

bodies = {
    "creator-create": b"\x00" + creator.encode(),
    "creator-patch": b"\x01" + b'{"email":null,"tags":["x"],"name":"N\\u00e9"}',
    "email": b"\x02" + b'{"to":["a@b.example"],"cc":["\\"Q, R\\" <q@r.example>"],"subject":"S","text":"t","reply_to":"c@d.example"}',
    "params": b"\x03" + b'{"pipeline":"diagnostic","params":{"sleep_ms":5,"steps":2}}',
    "params-bare": b"\x03" + b'{"sleep_ms":5,"count":2,"width":64,"height":64,"style":"waves"}',
}
for name, data in bodies.items():
    write("json_body", name, data)

for name, data in {"png": png(2, 2), "jpeg": jpeg(4, 3), "webp": webp(5, 6)}.items():
    write("image", name, data)

templates = {
    "text": "Hello {{ params.name }}, you are {{ params.n }}",
    "url": "https://api.example/v1/{{ params.name }}/x?n={{ params.n }}\0{\"params\":{\"name\":\"a/b\",\"n\":2}}",
    "raw": "{{ params.base | raw }}/path\0{\"params\":{\"base\":\"https://x.example\"}}",
    "doc": '{"prompt":"{{ params.name }}","list":"{{ steps.a.output.items }}","n":["{{ params.n }}"]}'
           '\0{"params":{"name":"x","n":1},"steps":{"a":{"output":{"items":[1,2]}}}}',
    "env": "${HOME}/{{ job.id }}\0{\"job\":{\"id\":7,\"attempt\":1}}",
}
for name, data in templates.items():
    write("template", name, data)

examples = pathlib.Path(__file__).resolve().parent.parent / "examples" / "pipelines.toml"
if examples.exists():
    write("pipelines", "examples", examples.read_bytes())
write("pipelines", "small", """[[pipeline]]
name = "hello"
queue = "default"
timeout_seconds = 60
[pipeline.params.name]
type = "string"
default = "x"

[[pipeline.step]]
name = "call"
type = "http"
method = "POST"
url = "http://127.0.0.1:9/{{ params.name }}"
body = { prompt = "{{ params.name }}" }

[[schedule]]
name = "nightly"
pipeline = "hello"
cron = "0 3 * * *"
timezone = "Europe/Paris"
""")

for i, v in enumerate([1, 42, 9223372036854775807]):
    write("cursor", f"cursor-{i}", base64.urlsafe_b64encode(f"v1:{v}".encode()).decode().rstrip("="))
write("cursor", "limit-cursor-q", b"20\0" + base64.urlsafe_b64encode(b"v1:5").rstrip(b"=") + b"\0ada")

mimes = {
    "plain": b"bob@example.com\0Hello\0Body text\0\0",
    "html": "\"B\u00f6b\" <bob@example.com>\0H\u00e9llo =?x?= \0line one\nline two\0<p>hi</p>\0Ann <ann@example.com>".encode(),
    "long": b"x@y.example\0" + b"S" * 200 + b"\0" + b"long line " * 200 + b"\0\0",
}
for name, data in mimes.items():
    write("mime", name, data)
print("seeds written to", root)
