"""The straightforward alternative to Herald, for the benchmark: a Celery task per event that
looks up the tenant's endpoints in PostgreSQL, stores the event and a delivery, signs the body
as Standard Webhooks does (HMAC-SHA256 of "id.timestamp.body"), POSTs it with requests,
records the attempt and the delivery's state, and retries on Herald's ladder with countdown.
"""
import base64
import hashlib
import hmac
import json
import os
import time
import uuid

import psycopg
import requests
from celery import Celery

app = Celery("peer", broker=os.environ["PEER_AMQP_URL"])
app.conf.update(
    task_acks_late=True,  # acked after the work, as Herald acks: a killed worker loses nothing
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=int(os.environ.get("PEER_PREFETCH", "4")),
    task_default_queue=os.environ.get("PEER_QUEUE", "peer"),
    broker_connection_retry_on_startup=True,
)

LADDER = [60, 300, 1800, 7200, 43200]
_connection = None
_session = None


def database():
    global _connection
    if _connection is None or _connection.closed:
        _connection = psycopg.connect(os.environ["PEER_DATABASE_URL"], autocommit=True)
    return _connection


def session():
    global _session
    if _session is None:
        _session = requests.Session()
    return _session


def sign(secret, message_id, timestamp, body):
    key = base64.b64decode(secret.split("_", 1)[1])
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


@app.task(bind=True, max_retries=len(LADDER))
def deliver(self, event, endpoint_id=None):
    """Fans an event out to its tenant's endpoints (endpoint_id None), or retries one."""
    db = database()
    with db.cursor() as cursor:
        if endpoint_id is None:
            cursor.execute(
                "INSERT INTO events (tenant_id, id, type, data) VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
                (event["tenant_id"], event["id"], event["type"], json.dumps(event["data"])),
            )
            cursor.execute("SELECT id, url, secret FROM endpoints WHERE tenant_id = %s AND enabled", (event["tenant_id"],))
            endpoints = cursor.fetchall()
        else:
            cursor.execute("SELECT id, url, secret FROM endpoints WHERE id = %s", (endpoint_id,))
            endpoints = cursor.fetchall()
        for endpoint, url, secret in endpoints:
            cursor.execute(
                """INSERT INTO deliveries (id, tenant_id, event_id, endpoint_id, status, attempts)
                   VALUES (%s, %s, %s, %s, 'pending', 0)
                   ON CONFLICT (endpoint_id, event_id) DO UPDATE SET attempts = deliveries.attempts
                   RETURNING id, attempts""",
                (str(uuid.uuid4()), event["tenant_id"], event["id"], endpoint),
            )
            delivery, attempts = cursor.fetchone()
            attempt = attempts + 1
            body = json.dumps(event["data"], separators=(",", ":")).encode()
            timestamp = str(int(time.time()))
            headers = {
                "content-type": "application/json",
                "webhook-id": str(delivery),
                "webhook-timestamp": timestamp,
                "webhook-signature": sign(secret, str(delivery), timestamp, body),
            }
            started = time.time()
            status, error = None, None
            try:
                response = session().post(url, data=body, headers=headers, timeout=10)
                status = response.status_code
            except requests.RequestException as exception:
                error = type(exception).__name__
            duration = int((time.time() - started) * 1000)
            delivered = status is not None and 200 <= status < 300
            cursor.execute(
                """INSERT INTO delivery_attempts (delivery_id, attempt, started_at, duration_ms, status_code, error)
                   VALUES (%s, %s, to_timestamp(%s), %s, %s, %s)""",
                (delivery, attempt, started, duration, status, error),
            )
            final = delivered or attempt > len(LADDER) or (status is not None and 400 <= status < 500 and status not in (408, 429))
            cursor.execute(
                """UPDATE deliveries SET attempts = %s, status = %s, last_status_code = %s,
                          delivered_at = CASE WHEN %s THEN now() END WHERE id = %s""",
                (attempt, "delivered" if delivered else ("failed" if final else "retrying"), status, delivered, delivery),
            )
            if not final:
                deliver.apply_async(args=[event, str(endpoint)], countdown=LADDER[attempt - 1])
