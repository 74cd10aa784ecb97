# CraftDesk's Python verification snippet and Flask handler, from
# ../shared/reference/001_d20e9e76922d2d1f.txt, "Verifying Webhook Signatures", as written there
# but for one word: the handler passes request.get_data() (bytes) to verify_webhook, which calls
# payload_body.encode() - an AttributeError in Python 3 for every request, whoever sends it. The
# handler here passes request.get_data(as_text=True), the fix a receiver's author makes; the
# UTF-8 JSON body decodes and encodes back to the same bytes. Filled in: the header name
# X-Webhook-Signature (as the document names it) and the secret ($WEBHOOK_SECRET). Added: the app,
# the route path, the request log hook and the port.
import os

from flask import Flask, request

from receiver_log import log_request

app = Flask(__name__)
app.after_request(lambda response: log_request(request, response))

# --- from the reference document ---
import hmac
import hashlib
import json
def verify_webhook(payload_body, signature, secret):
    """Verify that a webhook came from CraftDesk."""
    expected_signature = hmac.new(
        secret.encode(),
        payload_body.encode(),
        hashlib.sha256
    ).hexdigest()
    return hmac.compare_digest(signature, expected_signature)
# In your Flask handler
@app.route("/webhook", methods=["POST"])
def handle_webhook():
    payload = request.get_data(as_text=True)  # the document: request.get_data()
    signature = request.headers.get("X-Webhook-Signature")
    if not verify_webhook(payload, signature, os.getenv("WEBHOOK_SECRET")):
        return "Unauthorized", 401
    event = json.loads(payload)
    if event["event"] == "project.created":
        # Handle project creation
        project = event["data"]
        print(f"New project: {project['name']}")
    return "OK", 200
# --- end ---


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ["PORT"]))
