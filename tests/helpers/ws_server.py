#!/usr/bin/env python3
"""An independent WebSocket server for the WsEcho tests, on the Python
`websockets` package (installed by `cargo xtask test` into target/venv).

Usage: ws_server.py --port P [--tls-port Q --cert-dir DIR] [--parent PID] [--lifetime SEC]
                    [--record FILE]

With --cert-dir, a CA, a server certificate for 127.0.0.1/localhost signed by
it, and an unrelated "wrong" CA are made at start (cryptography package) and
written there as ca.pem, wrong-ca.pem, server.pem, server.key; the TLS port
serves the same paths over wss. Loopback only.

With --record, every text message the echo path receives is appended to FILE as
"<connection> <text>" before it is echoed, written straight to the file (no
buffer), so that the lines survive a SIGKILL: the soak's harness reads what the
server got on which connection (rust/xtask/src/commands/soak/). <connection> is
"<pid>.<n>", unique across restarts.

Paths:
  /                      echo every text and binary message back
  /close/CODE/REASON     close at once with CODE and REASON (URL-decoded)
  /big/N                 send one text message of N bytes, then echo
  /mute                  stop reading after the handshake: pings go unanswered
  /forbidden             refuse the upgrade with HTTP 403
Subprotocols offered by the client: the first of "chat.v2", "echo.v1" it
offers is chosen; none if it offers neither.
"""

import argparse
import asyncio
import datetime
import http
import ipaddress
import os
import ssl
import sys
import urllib.parse

from parent_watch import serve_until_done
from websockets.asyncio.server import serve

SUBPROTOCOLS = ["chat.v2", "echo.v1"]
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
RECORD = {"fd": None, "connections": 0}


async def handler(ws):
    path = urllib.parse.urlparse(ws.request.path).path
    parts = [urllib.parse.unquote(p) for p in path.strip("/").split("/")]
    if parts[0] == "close" and len(parts) >= 2:
        await ws.close(int(parts[1]), parts[2] if len(parts) > 2 else "")
        return
    if parts[0] == "mute":
        ws.transport.pause_reading()
        await asyncio.Future()
    if parts[0] == "big" and len(parts) == 2:
        await ws.send("x" * int(parts[1]))
    RECORD["connections"] += 1
    connection = "%d.%d" % (os.getpid(), RECORD["connections"])
    async for message in ws:
        if RECORD["fd"] is not None and isinstance(message, str):
            os.write(RECORD["fd"], ("%s %s\n" % (connection, message)).encode())
        await ws.send(message)


def process_request(connection, request):
    if urllib.parse.urlparse(request.path).path == "/forbidden":
        return connection.respond(http.HTTPStatus.FORBIDDEN, "forbidden by the test server\n")
    return None


def select_subprotocol(connection, offered):
    for protocol in offered:
        if protocol in SUBPROTOCOLS:
            return protocol
    return None


def make_certificates(directory):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    os.makedirs(directory, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    start, end = now - datetime.timedelta(days=1), now + datetime.timedelta(days=30)

    def name(text):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])

    def ca(common_name):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(name(common_name))
            .issuer_name(name(common_name))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
            )
            .sign(key, hashes.SHA256())
        )
        return key, cert

    def write(file, data):
        with open(os.path.join(directory, file), "wb") as f:
            f.write(data)

    ca_key, ca_cert = ca("async-net test CA")
    _, wrong_cert = ca("async-net wrong CA")
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(name("localhost"))
        .issuer_name(ca_cert.subject)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    write("ca.pem", ca_cert.public_bytes(pem))
    write("wrong-ca.pem", wrong_cert.public_bytes(pem))
    write("server.pem", server_cert.public_bytes(pem))
    write(
        "server.key",
        server_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
    )


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tls-port", type=int)
    parser.add_argument("--cert-dir")
    parser.add_argument("--parent", type=int)
    parser.add_argument("--lifetime", type=float, default=0.0)
    parser.add_argument("--record")
    args = parser.parse_args()
    if args.record:
        RECORD["fd"] = os.open(args.record, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    options = dict(
        process_request=process_request,
        select_subprotocol=select_subprotocol,
        max_size=MAX_MESSAGE_BYTES,
        max_queue=None,
        ping_interval=None,
    )
    servers = [await serve(handler, "127.0.0.1", args.port, **options)]
    if args.tls_port:
        make_certificates(args.cert_dir)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(os.path.join(args.cert_dir, "server.pem"), os.path.join(args.cert_dir, "server.key"))
        servers.append(await serve(handler, "127.0.0.1", args.tls_port, ssl=context, **options))
    print("ready", flush=True)
    await serve_until_done(args.parent, *([asyncio.sleep(args.lifetime)] if args.lifetime > 0 else []))


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
