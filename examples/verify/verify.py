"""Verify a Herald webhook in Python (standard library only).

Either signature proves the request: webhook-signature (Standard Webhooks: base64 HMAC of
"{id}.{unix timestamp}.{body}", keyed with the bytes after "whsec_"), which carries one entry
per valid secret during a rotation, so a receiver with the old or the new secret verifies it;
or X-Herald-Signature (hex HMAC of "{timestamp}.{body}", keyed with the secret string), which
carries the receiver's previous secret until the rotation is confirmed. Use the raw body,
never re-serialised JSON, and compare in constant time.
"""
import base64
import hashlib
import hmac
import time
from datetime import datetime

TOLERANCE_SECONDS = 5 * 60


def verify_herald(secret: str, headers: dict, body: bytes) -> bool:
    timestamp = headers["x-herald-timestamp"]  # e.g. 2026-05-12T09:30:00Z
    received = headers["x-herald-signature"]  # "sha256=..."
    sent = datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()
    if abs(time.time() - sent) > TOLERANCE_SECONDS:
        return False  # replay protection
    expected = "sha256=" + hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, received)


def verify_standard(secret: str, headers: dict, body: bytes) -> bool:
    msg_id, timestamp = headers["webhook-id"], headers["webhook-timestamp"]
    if abs(time.time() - int(timestamp)) > TOLERANCE_SECONDS:
        return False
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    expected = base64.b64encode(digest).decode()
    # During a secret rotation there is one "v1,..." entry per valid secret.
    return any(
        hmac.compare_digest(expected, entry.split(",", 1)[1])
        for entry in headers["webhook-signature"].split(" ")
        if entry.startswith("v1,")
    )


if __name__ == "__main__":
    # Used by Herald's tests: {"secret", "headers" (lower-case names), "body_base64"} on stdin.
    import json
    import sys

    request = json.load(sys.stdin)
    headers = {k.lower(): v for k, v in request["headers"].items()}
    body = base64.b64decode(request["body_base64"])
    ok = verify_standard(request["secret"], headers, body) or verify_herald(request["secret"], headers, body)
    print("valid" if ok else "invalid")
    sys.exit(0 if ok else 1)
