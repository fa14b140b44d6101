#!/usr/bin/python3
"""Real JWTs and JWKS documents for the tests (PyJWT and cryptography from Debian).

jwt_tool.py keys DIR
    Writes new keys to DIR: rsa1.pem, rsa2.pem (RSA 2048), ec1.pem (P-256), their public halves
    (*.pub.pem) and JWKS documents: jwks-rsa1.json, jwks-all.json (every key), with kid = the name.
jwt_tool.py sign --alg ALG --key KEY [--kid KID] [--claims JSON] [--exp-in S] [--nbf-in S]
                 [--now UNIX] [--tamper]
    Prints a token. ALG: HS256 (KEY: the secret text, or @FILE for a file's bytes, e.g. an RSA
    public key to try the HS/RS confusion), RS256 / ES256 (KEY: a private key PEM file), none.
    exp/nbf are --now (default: the current time) plus the given seconds. --tamper changes the
    payload after signing.
jwt_tool.py [serve] --port P --port-file F --dir DIR
    Serves DIR/jwks.json at /jwks.json (503 while DIR/down exists) and counts fetches in
    DIR/fetches.
"""
import argparse
import base64
import hashlib
import hmac
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def write_keys(folder):
    os.makedirs(folder, exist_ok=True)
    keys = {"rsa1": rsa.generate_private_key(65537, 2048), "rsa2": rsa.generate_private_key(65537, 2048),
            "ec1": ec.generate_private_key(ec.SECP256R1())}
    jwks = {}
    for name, key in keys.items():
        with open(os.path.join(folder, name + ".pem"), "wb") as f:
            f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
        with open(os.path.join(folder, name + ".pub.pem"), "wb") as f:
            f.write(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo))
        algo = jwt.algorithms.RSAAlgorithm if name.startswith("rsa") else jwt.algorithms.ECAlgorithm
        jwk = json.loads(algo.to_jwk(key.public_key()))
        jwk["kid"] = name
        jwk["use"] = "sig"
        jwks[name] = jwk
    for name in keys:
        with open(os.path.join(folder, "jwks-%s.json" % name), "w") as f:
            json.dump({"keys": [jwks[name]]}, f)
    with open(os.path.join(folder, "jwks-all.json"), "w") as f:
        json.dump({"keys": list(jwks.values())}, f)


def sign(a):
    now = a.now if a.now is not None else int(time.time())
    claims = json.loads(a.claims)
    if a.exp_in is not None:
        claims["exp"] = now + a.exp_in
    if a.nbf_in is not None:
        claims["nbf"] = now + a.nbf_in
    header = {"alg": a.alg, "typ": "JWT"}
    if a.kid:
        header["kid"] = a.kid
    if a.alg in ("HS256", "none"):
        key = b""
        if a.key.startswith("@"):
            with open(a.key[1:], "rb") as f:
                key = f.read()
        else:
            key = a.key.encode()
        signing = b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode())
        sig = b"" if a.alg == "none" else hmac.new(key, signing.encode(), hashlib.sha256).digest()
        token = signing + "." + b64(sig)
    else:
        with open(a.key, "rb") as f:
            key = serialization.load_pem_private_key(f.read(), None)
        token = jwt.encode(claims, key, algorithm=a.alg, headers={"kid": a.kid} if a.kid else None)
    if a.tamper:
        h, p, s = token.split(".")
        claims["sub"] = claims.get("sub", "") + "-someone-else"
        token = h + "." + b64(json.dumps(claims).encode()) + "." + s
    print(token)


def serve(a):
    folder = a.dir
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            with lock:
                path = os.path.join(folder, "fetches")
                n = int(open(path).read()) if os.path.exists(path) else 0
                with open(path + ".tmp", "w") as f:
                    f.write(str(n + 1))
                os.replace(path + ".tmp", path)
            if os.path.exists(os.path.join(folder, "down")) or self.path != "/jwks.json":
                self.send_response(503 if self.path == "/jwks.json" else 404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            with open(os.path.join(folder, "jwks.json"), "rb") as f:
                data = f.read()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    with open(a.port_file + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    os.replace(a.port_file + ".tmp", a.port_file)
    server.serve_forever()


def main():
    # As the tests' ScriptServer starts it: `jwt_tool.py --port P --port-file F --dir DIR`.
    if len(sys.argv) > 1 and sys.argv[1] == "--port":
        sys.argv.insert(1, "serve")
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    k = sub.add_parser("keys")
    k.add_argument("dir")
    s = sub.add_parser("sign")
    s.add_argument("--alg", required=True)
    s.add_argument("--key", default="")
    s.add_argument("--kid")
    s.add_argument("--claims", default="{}")
    s.add_argument("--exp-in", type=int)
    s.add_argument("--nbf-in", type=int)
    s.add_argument("--now", type=int)
    s.add_argument("--tamper", action="store_true")
    v = sub.add_parser("serve")
    v.add_argument("--port", type=int, default=0)
    v.add_argument("--port-file", required=True)
    v.add_argument("--dir", required=True)
    a = p.parse_args()
    if a.cmd == "keys":
        write_keys(a.dir)
    elif a.cmd == "sign":
        sign(a)
    else:
        serve(a)


if __name__ == "__main__":
    main()
