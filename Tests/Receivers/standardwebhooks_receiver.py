# A receiver using the official Standard Webhooks library (PyPI standardwebhooks, pinned in
# scripts/services) the way its README shows: Webhook(secret).verify(payload, headers), which
# raises WebhookVerificationError on a bad signature or a stale timestamp. 401 then.
import os

from flask import Flask, request
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from receiver_log import log_request

app = Flask(__name__)
app.after_request(lambda response: log_request(request, response))
wh = Webhook(os.environ["WEBHOOK_SECRET"])


@app.post("/webhook")
def webhook():
    try:
        wh.verify(request.get_data(), dict(request.headers))
    except WebhookVerificationError:
        return "invalid signature", 401
    return "ok", 200


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ["PORT"]))
