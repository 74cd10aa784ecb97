# GitHub's documented check ("Validating webhook deliveries", docs.github.com): the HMAC-SHA256
# of the raw body keyed with the secret as UTF-8, "sha256=" and its hex digest, compared in
# constant time with X-Hub-Signature-256; 403 when missing or different. The documentation's
# example raises FastAPI's HTTPException(status_code=403); here a Flask route answers 403.
import hashlib
import hmac
import os

from flask import Flask, request

from receiver_log import log_request

app = Flask(__name__)
app.after_request(lambda response: log_request(request, response))


class HTTPException(Exception):
    def __init__(self, status_code, detail):
        self.status_code = status_code
        self.detail = detail


def verify_signature(payload_body, secret_token, signature_header):
    """Verify that the payload was sent from GitHub by validating SHA256; raise 403 if not."""
    if not signature_header:
        raise HTTPException(status_code=403, detail="x-hub-signature-256 header is missing!")
    hash_object = hmac.new(secret_token.encode("utf-8"), msg=payload_body, digestmod=hashlib.sha256)
    expected_signature = "sha256=" + hash_object.hexdigest()
    if not hmac.compare_digest(expected_signature, signature_header):
        raise HTTPException(status_code=403, detail="Request signatures didn't match!")


@app.post("/webhook")
def webhook():
    try:
        verify_signature(request.get_data(), os.environ["WEBHOOK_SECRET"], request.headers.get("X-Hub-Signature-256"))
    except HTTPException as error:
        return error.detail, error.status_code
    return "ok", 200


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ["PORT"]))
