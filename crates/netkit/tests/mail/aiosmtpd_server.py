"""A test SMTP server built on aiosmtpd (not netkit's code).

Saves each message's bytes as N.eml in --outdir, with N.json holding the
envelope. Prints `listening on 127.0.0.1:PORT` once bound. The test
account's password comes from the TEST_SMTP_PASSWORD environment variable.
"""

import argparse
import asyncio
import json
import os
import ssl

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Saver:
    def __init__(self, outdir, reject):
        self.outdir = outdir
        self.reject = set(reject)
        self.count = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.reject:
            return "550 5.1.1 <%s>: Recipient address rejected: User unknown" % address
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        path = os.path.join(self.outdir, "%d.eml" % self.count)
        self.count += 1
        with open(path + ".json", "w") as meta:
            json.dump(
                {
                    "from": envelope.mail_from,
                    "rcpt": envelope.rcpt_tos,
                    "mail_options": envelope.mail_options,
                    "tls": session.ssl is not None,
                },
                meta,
            )
        with open(path + ".tmp", "wb") as out:
            out.write(envelope.original_content)
        os.rename(path + ".tmp", path)
        return "250 2.0.0 Ok: queued as %d" % self.count


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--outdir", required=True)
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--implicit", action="store_true")
    parser.add_argument("--user")
    parser.add_argument("--auth-without-tls", action="store_true")
    parser.add_argument("--reject", action="append", default=[])
    parser.add_argument("--no-smtputf8", action="store_true")
    # Advertised as SIZE (RFC 1870); without it aiosmtpd offers no SIZE.
    parser.add_argument("--size-limit", type=int)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()

    context = None
    if args.cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.cert, args.key)

    password = os.environ.get("TEST_SMTP_PASSWORD", "")

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (
            args.user is not None
            and isinstance(auth_data, LoginPassword)
            and auth_data.login == args.user.encode()
            and auth_data.password == password.encode()
        )
        # handled=False: aiosmtpd itself answers 535 on failure.
        return AuthResult(success=ok, handled=False)

    handler = Saver(args.outdir, args.reject)

    def factory():
        return SMTP(
            handler,
            hostname="mx.test.example",
            tls_context=None if args.implicit else context,
            enable_SMTPUTF8=not args.no_smtputf8,
            authenticator=authenticator if args.user else None,
            # Implicit TLS is invisible to aiosmtpd's own TLS check.
            auth_require_tls=not (args.implicit or args.auth_without_tls),
            data_size_limit=args.size_limit,
        )

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    server = loop.run_until_complete(
        loop.create_server(
            factory, args.host, args.port, ssl=context if args.implicit else None
        )
    )
    host, port = server.sockets[0].getsockname()[:2]
    shown = "[%s]" % host if ":" in host else host
    print("listening on %s:%d" % (shown, port), flush=True)
    loop.run_forever()


if __name__ == "__main__":
    main()
