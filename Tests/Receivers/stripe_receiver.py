# Stripe's documented check with its official library (PyPI stripe, pinned in scripts/services),
# as Stripe's webhook guide shows it for Flask: stripe.Webhook.construct_event(payload,
# sig_header, endpoint_secret); 400 on a payload that is not JSON (ValueError) or a signature
# that does not match (SignatureVerificationError). construct_event also refuses a t= older
# than 300 s.
import os

import stripe
from flask import Flask, jsonify, request

from receiver_log import log_request

app = Flask(__name__)
app.after_request(lambda response: log_request(request, response))
endpoint_secret = os.environ["WEBHOOK_SECRET"]


@app.route("/webhook", methods=["POST"])
def webhook():
    payload = request.data
    sig_header = request.headers.get("Stripe-Signature")
    try:
        event = stripe.Webhook.construct_event(payload, sig_header, endpoint_secret)
    except ValueError:
        return "Invalid payload", 400
    except stripe.SignatureVerificationError:
        return "Invalid signature", 400
    return jsonify(success=True)


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ["PORT"]))
