"""A local webhook receiver for the demo: verifies both signatures of every request with
examples/verify/verify.py, answers /healthy with 200 and /flaky with 503 three times, then 200."""
import http.server
import os
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "examples", "verify"))
from verify import verify_herald, verify_standard  # noqa: E402

SECRET = os.environ["DEMO_SECRET"]
lock = threading.Lock()
flaky_calls = 0


class Receiver(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        global flaky_calls
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        headers = {k.lower(): v for k, v in self.headers.items()}
        valid = verify_herald(SECRET, headers, body) and verify_standard(SECRET, headers, body)
        status = 200
        if self.path == "/flaky":
            with lock:
                flaky_calls += 1
                status = 503 if flaky_calls <= 3 else 200
        if not valid:
            status = 401
        print(f"receiver: {self.path:<8} {headers.get('x-herald-event', '?'):<18} "
              f"request {headers.get('x-herald-request-id', '?')[:8]}  signature {'valid' if valid else 'INVALID'}  -> {status}",
              flush=True)
        self.send_response(status)
        self.send_header("content-type", "text/plain")
        self.end_headers()
        self.wfile.write(b"ok" if status == 200 else b"try again later")

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ.get("DEMO_PORT", "8787"))), Receiver).serve_forever()
