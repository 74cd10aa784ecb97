# CreatorDesk's Python (Flask / Django) verification snippet, from
# ../shared/reference/000_ceb4263153d1b093.txt, section "3. Verify HMAC Signature" (lines 379-399),
# as written there. Filled in: the secret, from $WEBHOOK_SECRET. Added around it: the Flask app,
# a route calling verify(request), the request log hook (receiver_log.py) and the port ($PORT).
import os

from flask import Flask, request

from receiver_log import log_request

app = Flask(__name__)
app.after_request(lambda response: log_request(request, response))

# --- from the reference document ---
import hmac, hashlib

WEBHOOK_SECRET = os.environ["WEBHOOK_SECRET"]

def verify(request):
    timestamp = request.headers["X-CreatorDesk-Timestamp"]
    received = request.headers["X-CreatorDesk-Signature"]  # "sha256=..."
    body = request.get_data()  # raw bytes, NICHT request.json

    message = f"{timestamp}.".encode() + body
    expected = "sha256=" + hmac.new(
        WEBHOOK_SECRET.encode(), message, hashlib.sha256
    ).hexdigest()

    if not hmac.compare_digest(expected, received):
        return "invalid signature", 401

    # Replay-Schutz: Timestamp darf nicht aelter als 5 min sein
    # → return 401 bei zu altem Timestamp

    return "ok", 200
# --- end ---


@app.post("/webhook")
def webhook():
    return verify(request)


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ["PORT"]))
