"""The receivers' request log, for Herald's tests: after each answer, one JSON line with the
request's headers (names lower-cased), its body in base64 and the status answered, appended
to $RECEIVER_LOG. A Flask hook calls it; the verification code it wraps is not touched."""
import base64
import json
import os


def log_request(request, response):
    path = os.environ.get("RECEIVER_LOG")
    if path:
        line = {
            "headers": {name.lower(): value for name, value in request.headers.items()},
            "body_base64": base64.b64encode(request.get_data()).decode(),
            "status": response.status_code,
        }
        with open(path, "a") as log:
            log.write(json.dumps(line) + "\n")
            log.flush()
    return response
