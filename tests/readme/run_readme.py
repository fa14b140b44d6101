#!/usr/bin/env python3
"""The executable README: runs every shell example of README.md, in order, against a server
started as `make run` starts it, and checks what each example says it answers.

Usage: run_readme.py README.md BUILT_CREATORD

What it reads from README.md:
- Every ```sh fence is run, command by command (a command is a line plus its `\\` continuations).
  The comment lines after a command (and a comment at its end) say what it answers:
    `# 201 {"id":9,...}`     the HTTP status, then JSON whose "key":value pairs must be found
                             in the answer (at any depth; values containing … are not checked,
                             keys named with [...] or {...} must exist);
    `# 202 Location: /x`     a header;
    `# event: job.finished`  a Server-Sent Event the stream must carry (with its `data:` pairs);
    `# exit 4`               the exit status of a command that is not curl (else 0).
  A curl without a status comment must answer 2xx. A GET whose answer does not match yet is
  asked again for a while: jobs and emails finish in the background.
- `<!-- readme: not-run REASON -->` before a fence: the fence is skipped (the reason is printed).
- `<!-- readme: config-file -->` before a fence: its text is a config file; `creatord --config
  FILE version` must accept it.
- `<!-- readme: server ARGS -->` before a fence: the fence runs against a server of its own,
  started with these extra arguments (e.g. --api-tokens $TOKEN).

The server: `creatord serve --listen 127.0.0.1:PORT --data-dir ./data --demo` in a fresh folder
that also holds build/creatord (a link to the binary under test), so commands run as written;
http://127.0.0.1:8000 in a command becomes the server's address. $TOKEN is a fresh API token.
CREATORD_RENDER_IDLE=false keeps rendering from starving behind other CPU load on shared machines.
"""
import json
import os
import re
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import zlib

README_PORT = "127.0.0.1:8000"
MARKER = re.compile(r"<!--\s*readme:\s*(not-run|config-file|server)\b(.*?)-->", re.S)
PAIR = re.compile(r'"([^"]+)"\s*:\s*("(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?|true|false|null)')
KEY = re.compile(r'"([^"]+)"\s*:')


class Failure(Exception):
    pass


# ---------------------------------------------------------------------------------------------
# Reading the README


def fences(text):
    """Yields (line number, info, body, marker, marker_args) for each fenced block."""
    lines = text.split("\n")
    i = 0
    pending = None
    while i < len(lines):
        line = lines[i]
        m = MARKER.search(line)
        if m:
            pending = (m.group(1), m.group(2).strip())
        if line.startswith("```"):
            info = line[3:].strip()
            start = i + 1
            j = start
            while j < len(lines) and not lines[j].startswith("```"):
                j += 1
            marker, args = pending or (None, "")
            yield start + 1, info, "\n".join(lines[start:j]), marker, args
            pending = None
            i = j + 1
            continue
        elif line.strip() and not m:
            pending = None  # a marker applies to the fence right after it
        i += 1


def split_inline_comment(line):
    """'cmd  # note' -> ('cmd', 'note'): a # outside quotes that follows a space."""
    quote = None
    for k, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and k > 0 and line[k - 1] in " \t":
            return line[:k].rstrip(), line[k + 1:].strip()
    return line.rstrip(), None


def open_quote(text):
    quote = None
    for ch in text:
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
    return quote is not None


def commands(body, first_line):
    """Yields dicts {line, command, expect: [comment lines]} from a shell fence."""
    out = []
    lines = body.split("\n")
    i = 0
    while i < len(lines):
        raw = lines[i]
        stripped = raw.strip()
        if not stripped:
            i += 1
            continue
        if stripped.startswith("#"):
            if out:
                out[-1]["expect"].append(stripped[1:].strip())
            i += 1
            continue
        start = i
        parts = []
        # A command goes on after a trailing backslash, and while a quote is open.
        while raw.rstrip().endswith("\\") or open_quote("\n".join(parts + [raw])):
            parts.append(raw)  # kept as written: bash reads the backslash-newline itself
            i += 1
            raw = lines[i]
        cmd, note = split_inline_comment(raw)
        parts.append(cmd)
        out.append({"line": first_line + start, "command": "\n".join(parts), "expect": [note] if note else []})
        i += 1
    return out


# ---------------------------------------------------------------------------------------------
# Checking answers


def json_texts(text):
    return [t for t in re.findall(r"\{.*\}", text, re.S)]


def expected_status(expect):
    for e in expect:
        m = re.match(r"^(\d{3})\b", e)
        if m:
            return int(m.group(1))
    return None


def expected_exit(expect):
    for e in expect:
        m = re.match(r"^exit (\d+)\b", e)
        if m:
            return int(m.group(1))
    return 0


def walk(value):
    """Yields (key, value) of every member at any depth."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield k, v
            yield from walk(v)
    elif isinstance(value, list):
        for v in value:
            yield from walk(v)


def check_pairs(fragment, documents):
    """Every "key":scalar of fragment is found in one of documents; every key exists."""
    found = set()
    for doc in documents:
        found.update((k, json.dumps(v, sort_keys=True)) for k, v in walk(doc))
    keys = {k for k, _ in found}
    problems = []
    for key in KEY.findall(fragment):
        if key not in keys:
            problems.append(f'no "{key}"')
    for key, raw in PAIR.findall(fragment):
        if "…" in raw:
            continue
        want = json.dumps(json.loads(raw), sort_keys=True)
        if (key, want) not in found:
            problems.append(f'"{key}" is not {raw}')
    return problems


def parse_documents(body):
    docs = []
    for line in body.split("\n"):
        line = line.strip()
        if line.startswith("data:"):
            line = line[5:].strip()
        if line.startswith("{") or line.startswith("["):
            try:
                docs.append(json.loads(line))
            except ValueError:
                pass
    if not docs:
        try:
            docs.append(json.loads(body))
        except ValueError:
            pass
    return docs


def check_answer(expect, status, headers, body):
    problems = []
    want = expected_status(expect)
    if want is not None and status != want:
        problems.append(f"status {status}, the README says {want}")
    if want is None and not 200 <= status < 300:
        problems.append(f"status {status}, expected 2xx")
    docs = parse_documents(body)
    for e in expect:
        m = re.match(r"^(?:\d{3}\s+)?Location:\s*(\S+)", e)
        if m and headers.get("location") != m.group(1):
            problems.append(f"Location {headers.get('location')!r}, the README says {m.group(1)}")
        m = re.match(r"^event:\s*(\S+)", e)
        if m and f"event: {m.group(1)}" not in body:
            problems.append(f"no event {m.group(1)}")
        m = re.match(r"^id:\s*(\d+)", e)
        if m and f"id: {m.group(1)}" not in body:
            problems.append(f"no event id {m.group(1)}")
        fragment = e[e.find("{"):] if "{" in e else ""
        if fragment:
            problems += check_pairs(fragment, docs)
    return problems


# ---------------------------------------------------------------------------------------------
# Running


def png(width, height):
    rows = []
    for y in range(height):
        row = bytearray([0])
        for x in range(width):
            row += bytes((x * 255 // width, y * 255 // height, 160))
        rows.append(bytes(row))

    def chunk(kind, data):
        c = kind + data
        return struct.pack(">I", len(data)) + c + struct.pack(">I", zlib.crc32(c) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"".join(rows))) +
            chunk(b"IEND", b""))


class Server:
    def __init__(self, folder, env, extra_args):
        self.folder = folder
        self.log = open(os.path.join(folder, "server.log"), "wb")
        self.err_path = os.path.join(folder, "server.err")
        args = ["build/creatord", "serve", "--listen", "127.0.0.1:0", "--data-dir", "./data", "--demo"]
        args += extra_args
        self.proc = subprocess.Popen(args, cwd=folder, env=env, stdout=self.log,
                                     stderr=open(self.err_path, "wb"))
        self.address = None
        deadline = time.time() + 30
        while time.time() < deadline and self.proc.poll() is None:
            text = open(self.err_path, encoding="utf-8", errors="replace").read()
            m = re.search(r"listening on http://(\S+)", text)
            if m:
                self.address = m.group(1)
                return
            time.sleep(0.05)
        raise Failure(f"the server did not start: {open(self.err_path).read()} {open(self.log.name).read()}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()


def run_curl(cmd, folder, env):
    hdr = os.path.join(folder, "last.headers")
    injected = cmd.replace("curl ", f"curl -sS --max-time 120 -D {hdr} -w '%{{stderr}}HTTP_STATUS=%{{http_code}}' ", 1)
    p = subprocess.run(["bash", "-c", injected], cwd=folder, env=env, capture_output=True, timeout=180)
    err = p.stderr.decode("utf-8", "replace")
    m = re.search(r"HTTP_STATUS=(\d+)", err)
    status = int(m.group(1)) if m else 0
    headers = {}
    if os.path.exists(hdr):
        for line in open(hdr, encoding="utf-8", errors="replace"):
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
    return status, headers, p.stdout.decode("utf-8", "replace"), err


def run_example(ex, address, folder, env):
    cmd = ex["command"].replace(README_PORT, address)
    is_curl = cmd.lstrip().startswith("curl ")
    deadline = time.time() + 120
    while True:
        if is_curl:
            status, headers, body, err = run_curl(cmd, folder, env)
            problems = check_answer(ex["expect"], status, headers, body)
        else:
            p = subprocess.run(["bash", "-c", cmd], cwd=folder, env=env, capture_output=True, timeout=120)
            body, err = p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")
            problems = [] if p.returncode == expected_exit(ex["expect"]) else [
                f"exit status {p.returncode}, the README says {expected_exit(ex['expect'])}"]
        retry = is_curl and " -X " not in cmd and problems and time.time() < deadline
        if not retry:
            break
        time.sleep(0.5)
    if problems:
        raise Failure(f"README.md:{ex['line']}: {ex['command']}\n  " + "\n  ".join(problems) +
                      f"\n  answer: {body[:2000]}\n  stderr: {err[:500]}")
    print(f"ok   README.md:{ex['line']}: {ex['command'].splitlines()[0]}")


def check_config_file(body, line, folder, env):
    path = os.path.join(folder, "readme.conf")
    with open(path, "w") as f:
        f.write(body + "\n")
    p = subprocess.run(["build/creatord", "--config", path, "version"], cwd=folder, env=env, capture_output=True)
    if p.returncode != 0:
        raise Failure(f"README.md:{line}: the config file is refused: {p.stderr.decode()}")
    print(f"ok   README.md:{line}: the config file")


def main():
    readme, binary = sys.argv[1], os.path.abspath(sys.argv[2])
    text = open(readme, encoding="utf-8").read()
    root = tempfile.mkdtemp(prefix="creatord-readme-")
    env = dict(os.environ, TOKEN=secrets.token_hex(16), CREATORD_RENDER_IDLE="false")
    servers = []
    try:
        def folder_with_binary(name):
            folder = os.path.join(root, name)
            os.makedirs(os.path.join(folder, "build"))
            os.symlink(binary, os.path.join(folder, "build", "creatord"))
            with open(os.path.join(folder, "portrait.png"), "wb") as f:
                f.write(png(512, 512))
            return folder

        main_folder = folder_with_binary("main")
        main_server = Server(main_folder, env, [])
        servers.append(main_server)
        ran = 0
        for n, (line, info, body, marker, args) in enumerate(fences(text)):
            if marker == "not-run":
                print(f"skip README.md:{line}: {args}")
                continue
            if marker == "config-file":
                check_config_file(body, line, main_folder, env)
                ran += 1
                continue
            if info != "sh":
                continue
            folder, server = main_folder, main_server
            if marker == "server":
                folder = folder_with_binary(f"fence{n}")
                extra = subprocess.run(["bash", "-c", f"printf '%s\\n' {args}"], env=env, capture_output=True,
                                       text=True).stdout.split()
                server = Server(folder, env, extra)
                servers.append(server)
            for ex in commands(body, line):
                run_example(ex, server.address, folder, env)
                ran += 1
        print(f"{ran} README examples ran as written")
        return 0
    except Failure as f:
        print(f"FAIL {f}")
        return 1
    finally:
        for s in servers:
            s.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
