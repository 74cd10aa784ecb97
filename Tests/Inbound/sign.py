"""Signs an inbound test request the way each sender documents it.

Usage: sign.py METHOD SECRET BODY_FILE; prints the headers to send as a JSON object.
GitHub, Stripe and Shopify follow their documentation's verification code; Standard
Webhooks uses the official `standardwebhooks` package.
"""
import base64
import hashlib
import hmac
import json
import sys
import time
import uuid
from datetime import datetime, timezone

method, secret = sys.argv[1], sys.argv[2]
with open(sys.argv[3], "rb") as body:
    payload = body.read()
headers = {}
if method == "github":
    # docs.github.com: "X-Hub-Signature-256 ... HMAC hex digest of the request body ... sha256="
    digest = hmac.new(secret.encode("utf-8"), msg=payload, digestmod=hashlib.sha256).hexdigest()
    headers = {"X-Hub-Signature-256": "sha256=" + digest, "X-GitHub-Delivery": str(uuid.uuid4()), "X-GitHub-Event": "push"}
elif method == "stripe":
    # docs.stripe.com: signed_payload = "{t}.{payload}", HMAC-SHA256 with the endpoint secret, hex.
    timestamp = int(time.time())
    signed = f"{timestamp}.".encode() + payload
    digest = hmac.new(secret.encode("utf-8"), msg=signed, digestmod=hashlib.sha256).hexdigest()
    headers = {"Stripe-Signature": f"t={timestamp},v1={digest}"}
elif method == "shopify":
    # shopify.dev: base64 of HMAC-SHA256 of the raw body with the app's client secret.
    digest = base64.b64encode(hmac.new(secret.encode("utf-8"), payload, hashlib.sha256).digest()).decode()
    headers = {"X-Shopify-Hmac-Sha256": digest, "X-Shopify-Webhook-Id": str(uuid.uuid4())}
elif method == "standard-webhooks":
    from standardwebhooks.webhooks import Webhook

    msg_id = "msg_" + uuid.uuid4().hex
    now = datetime.now(tz=timezone.utc)
    signature = Webhook(secret).sign(msg_id, now, payload.decode("utf-8"))
    headers = {"webhook-id": msg_id, "webhook-timestamp": str(int(now.timestamp())), "webhook-signature": signature}
else:
    sys.exit(f"unknown method {method}")
print(json.dumps(headers))
