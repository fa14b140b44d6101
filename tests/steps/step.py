#!/usr/bin/python3
"""An exec step for tests. The mode comes from the input JSON ("mode"):
echo      output {"got": <input>, "pid": <pid>}, with progress lines on stderr
notjson   prints text that is not JSON
fail      exits 3 after a line on stderr
progress  reports progress 0.1 to 0.7 at once, then "PROGRESS 0.8 almost there" without a newline
sleep     writes its pid (and a child's) to input.pid_file, sleeps input.seconds, then outputs {"slept": s}
image     writes a PNG and outputs {"images": [{"path": ...}]}
image_at  writes a PNG to input.write (when given), then outputs {"images": [{"path": input.path}]}
"""
import json
import os
import struct
import subprocess
import sys
import time
import zlib

job = json.load(sys.stdin)
mode = job.get("mode")
if mode == "echo":
    print("PROGRESS 0.5 halfway", file=sys.stderr, flush=True)
    json.dump({"got": job, "pid": os.getpid()}, sys.stdout)
elif mode == "progress":
    for i in range(1, 8):
        print("PROGRESS 0.%d" % i, file=sys.stderr, flush=True)
    sys.stderr.write("PROGRESS 0.8 almost there")
    sys.stderr.flush()
    json.dump({"done": True}, sys.stdout)
elif mode == "notjson":
    print("this is not JSON")
elif mode == "fail":
    print("bad thing happened", file=sys.stderr)
    sys.exit(3)
elif mode == "sleep":
    child = subprocess.Popen(["sleep", "300"])
    with open(job["pid_file"] + ".tmp", "w") as f:
        f.write("%d %d" % (os.getpid(), child.pid))
    os.rename(job["pid_file"] + ".tmp", job["pid_file"])
    time.sleep(float(job.get("seconds", 300)))
    child.kill()
    json.dump({"slept": job.get("seconds")}, sys.stdout)
elif mode in ("image", "image_at"):
    raw = b"".join(b"\x00" + b"\x10\x20\x30" * 4 for _ in range(3))
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff)
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 4, 3, 8, 2, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    target = "made.png" if mode == "image" else job.get("write")
    if target:
        with open(target, "wb") as f:
            f.write(png)
    json.dump({"images": [{"path": "made.png" if mode == "image" else job["path"]}]}, sys.stdout)
else:
    print("unknown mode", file=sys.stderr)
    sys.exit(2)
