#!/usr/bin/python3
"""A real SMTP server for creatord's tests (Debian's python3-aiosmtpd).

Every accepted message is written to OUTDIR as JSON: {"mail_from", "rcpt_tos", "data", "tls", "auth"}.
Behaviour for tests:
  --reject SUBSTR     RCPT of an address containing SUBSTR gets 550
  --tempfail FILE     while FILE exists, DATA gets 451 (temporary)
  --delay SECONDS     wait this long before answering DATA (a slow server)
  --cert/--key        offer STARTTLS with this certificate; --require-tls refuses mail without it
  --auth USER:PASS    require AUTH (PLAIN/LOGIN) with these credentials
Writes its port to --port-file once it accepts connections; stops on SIGTERM.
"""
import argparse
import asyncio
import json
import os
import signal
import ssl
import sys
import threading
import time

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Handler:
    def __init__(self, args):
        self.args = args
        self.count = 0
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.args.reject and self.args.reject in address:
            return "550 5.1.1 <%s>: Recipient address rejected: no such user" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.args.tempfail and os.path.exists(self.args.tempfail):
            return "451 4.3.0 Temporary failure, try again later"
        if self.args.delay:
            await asyncio.sleep(self.args.delay)
        with self.lock:
            self.count += 1
            n = self.count
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "data": envelope.original_content.decode("utf-8", "replace"),
            "tls": session.ssl is not None or bool(self.args.implicit_tls),
            "auth": session.authenticated,
        }
        tmp = os.path.join(self.args.outdir, ".%d-%d.tmp" % (os.getpid(), n))
        with open(tmp, "w") as f:
            json.dump(record, f)
        os.rename(tmp, os.path.join(self.args.outdir, "%d-%06d.json" % (int(time.time() * 1000), n)))
        return "250 2.0.0 Ok: queued as %d" % n


async def serve(args, kwargs):
    loop = asyncio.get_running_loop()
    handler = Handler(args)
    implicit = kwargs.pop("implicit_tls", None)
    server = await loop.create_server(lambda: SMTP(handler, hostname="localhost", **kwargs),
                                      host="127.0.0.1", port=args.port, ssl=implicit)
    port = server.sockets[0].getsockname()[1]
    # Readiness and the port, for the harness: written atomically once we accept connections.
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(port))
    os.rename(tmp, args.port_file)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    await stop.wait()
    server.close()
    await server.wait_closed()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0, help="0 picks a free port")
    p.add_argument("--port-file", required=True, help="where to write the port once listening")
    p.add_argument("--outdir", required=True)
    p.add_argument("--reject")
    p.add_argument("--tempfail")
    p.add_argument("--delay", type=float, default=0)
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--require-tls", action="store_true")
    p.add_argument("--implicit-tls", action="store_true", help="TLS from the first byte (smtps)")
    p.add_argument("--auth")
    args = p.parse_args()
    os.makedirs(args.outdir, exist_ok=True)

    kwargs = {}
    if args.cert:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(args.cert, args.key)
        if args.implicit_tls:
            kwargs["implicit_tls"] = ctx
        else:
            kwargs["tls_context"] = ctx
            kwargs["require_starttls"] = args.require_tls
    if args.auth:
        user, password = args.auth.split(":", 1)

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = isinstance(auth_data, LoginPassword) and auth_data.login.decode() == user \
                and auth_data.password.decode() == password
            return AuthResult(success=ok, handled=False)

        kwargs["authenticator"] = authenticator
        kwargs["auth_required"] = True
        kwargs["auth_require_tls"] = bool(args.cert) and not args.implicit_tls
    asyncio.run(serve(args, kwargs))


if __name__ == "__main__":
    main()
