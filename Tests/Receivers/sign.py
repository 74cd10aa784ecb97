#!/usr/bin/env python3
"""Posts a signed JSON webhook to a receiver in this folder and prints the HTTP status.

Checks the receivers by hand, without Herald (python3's standard library only):

    sign.py --profile timestamped --secret S --prefix X-CreatorDesk http://127.0.0.1:8001/webhook
    sign.py --profile body-hex --secret S --header X-Webhook-Signature http://127.0.0.1:8002/webhook
    sign.py --profile github --secret S http://127.0.0.1:8003/webhook
    sign.py --profile stripe --secret S http://127.0.0.1:8004/webhook
    sign.py --profile standard --secret whsec_... http://127.0.0.1:8005/webhook
    add --tamper to change one byte of the body after signing (the receiver must refuse it)

Profiles, as Herald signs them:
  timestamped  {prefix}-Timestamp: 2026-12-03T09:30:00Z (now, ISO 8601 UTC) and
               {prefix}-Signature: sha256=<hex HMAC-SHA256 of "{timestamp}.{body}">
  body-hex     {header}: <hex HMAC-SHA256 of the body>
  github       X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>
  stripe       Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "{t}.{body}">
  standard     webhook-id, webhook-timestamp, webhook-signature: v1,<base64 HMAC-SHA256 of
               "{id}.{timestamp}.{body}">, keyed with the base64-decoded part after whsec_
All but `standard` key the HMAC with the whole secret string as UTF-8 (whsec_ included),
which is what the snippets and Stripe's library do.
"""
import argparse
import base64
import hashlib
import hmac
import json
import sys
import time
import urllib.error
import urllib.request
import uuid
from datetime import datetime, timezone

DEFAULT_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwMfKQ9r8GKYq="


def hex_hmac(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def signed_headers(args, body: bytes) -> dict:
    now = int(time.time())
    if args.profile == "timestamped":
        prefix = args.prefix or "X-CreatorDesk"
        timestamp = datetime.fromtimestamp(now, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {
            f"{prefix}-Timestamp": timestamp,
            f"{prefix}-Signature": "sha256=" + hex_hmac(args.secret, f"{timestamp}.".encode() + body),
            f"{prefix}-Event": args.event,
            f"{prefix}-Request-ID": str(uuid.uuid4()),
        }
    if args.profile == "body-hex":
        headers = {args.header or "X-Webhook-Signature": hex_hmac(args.secret, body)}
        if args.event_header:
            headers[args.event_header] = args.event
        return headers
    if args.profile == "github":
        return {
            "X-Hub-Signature-256": "sha256=" + hex_hmac(args.secret, body),
            "X-GitHub-Event": args.event,
            "X-GitHub-Delivery": str(uuid.uuid4()),
        }
    if args.profile == "stripe":
        return {"Stripe-Signature": f"t={now},v1=" + hex_hmac(args.secret, f"{now}.".encode() + body)}
    if args.profile == "standard":
        key = args.secret[len("whsec_"):] if args.secret.startswith("whsec_") else args.secret
        key_bytes = base64.b64decode(key + "==")
        msg_id = "msg_" + uuid.uuid4().hex
        digest = hmac.new(key_bytes, f"{msg_id}.{now}.".encode() + body, hashlib.sha256).digest()
        return {
            "webhook-id": msg_id,
            "webhook-timestamp": str(now),
            "webhook-signature": "v1," + base64.b64encode(digest).decode("ascii"),
        }
    raise SystemExit(f"unknown profile {args.profile}")


def tampered(body: bytes) -> bytes:
    """The body with one byte changed: the first '1' becomes '0' (still valid JSON)."""
    data = bytearray(body)
    index = data.find(b"1")
    if index < 0:
        index = len(data) - 1
    data[index] ^= 0x01
    return bytes(data)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url")
    parser.add_argument("--profile", required=True, choices=["timestamped", "body-hex", "github", "stripe", "standard"])
    parser.add_argument("--secret", default=DEFAULT_SECRET)
    parser.add_argument("--prefix", help="timestamped: the header prefix (default X-CreatorDesk)")
    parser.add_argument("--header", help="body-hex: the signature header (default X-Webhook-Signature)")
    parser.add_argument("--event-header", help="body-hex: a header carrying the event type (X-CF-Event)")
    parser.add_argument("--event", default="invoice.paid")
    parser.add_argument("--body", help="the JSON body to send (default: an envelope with id, type, event and data)")
    parser.add_argument("--tamper", action="store_true", help="change one byte of the body after signing")
    parser.add_argument("--verbose", "-v", action="store_true", help="print the headers and the response body too")
    args = parser.parse_args()

    if args.body is not None:
        body = args.body.encode("utf-8")
    else:
        body = json.dumps({
            "id": "evt_" + uuid.uuid4().hex,
            "type": args.event,
            "event": args.event,
            "timestamp": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "data": {"invoice_number": "R-2026-0089", "total": "1450.00", "tags": ["Hochzeit"]},
        }, separators=(",", ":")).encode("utf-8")
    headers = {"Content-Type": "application/json", **signed_headers(args, body)}
    if args.tamper:
        body = tampered(body)

    request = urllib.request.Request(args.url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, text = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, text = error.code, error.read()
    if args.verbose:
        print(json.dumps(headers, indent=2), file=sys.stderr)
        print(text.decode("utf-8", "replace")[:500], file=sys.stderr)
    print(status)
    return 0


if __name__ == "__main__":
    sys.exit(main())
