"""A stand-in CRM for docker-compose: receives the `crm` webhook of the shop example.

It checks the `X-Segmenter-Signature` header against CRM_SECRET the way the README's
"Webhooks" section tells receivers to, answers 204 to a good delivery and 401 to a bad
signature (which the sinks dead-letter at once), and prints one line per delivery, so
`docker-compose logs crm` shows what a real receiver would get. Standard library only.
"""
from __future__ import annotations

import hashlib
import hmac
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def signature_ok(secret: str, body: bytes, header: str) -> bool:
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header)


class Receiver(BaseHTTPRequestHandler):
    secret = os.environ.get("CRM_SECRET", "")

    def do_POST(self) -> None:  # noqa: N802 (the http.server naming)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        good = signature_ok(self.secret, body, self.headers.get("X-Segmenter-Signature", ""))
        delivery = self.headers.get("X-Segmenter-Delivery", "?")
        print(f"{'ok ' if good else 'BAD signature'} {delivery} {body.decode(errors='replace')}", flush=True)
        self.send_response(204 if good else 401)
        self.end_headers()

    def do_GET(self) -> None:  # noqa: N802
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok\n")

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        """Quiet: one line per delivery is printed by do_POST."""


if __name__ == "__main__":
    ThreadingHTTPServer(("0.0.0.0", int(os.environ.get("CRM_PORT", "8080"))), Receiver).serve_forever()
