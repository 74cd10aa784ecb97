"""Runs the peer once: a database of its own, N events over T tenants published as Celery
tasks, a Celery worker draining them into the receiver. Prints one JSON line: deliveries per
second (first publish to last delivery, as Herald's end to end), and the worker's CPU per
delivery. Called by bench/HeraldBench (`bench/run --only peer`)."""
import argparse
import base64
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from urllib.parse import urlsplit, urlunsplit

import psycopg
from kombu import Connection

here = os.path.dirname(os.path.abspath(__file__))
parser = argparse.ArgumentParser()
parser.add_argument("--amqp", required=True)
parser.add_argument("--database", required=True, help="an admin URL: a database is created beside it")
parser.add_argument("--receiver", required=True)
parser.add_argument("--events", type=int, default=5000)
parser.add_argument("--tenants", type=int, default=100)
parser.add_argument("--pool", default="prefork")
parser.add_argument("--concurrency", type=int, default=8)
args = parser.parse_args()

name = "peer_" + uuid.uuid4().hex[:8]
queue = name
with psycopg.connect(args.database, autocommit=True) as admin:
    admin.execute(f"CREATE DATABASE {name}")
parts = urlsplit(args.database)
url = urlunsplit(parts._replace(path="/" + name))


def cpu_seconds(root):
    """User + system seconds of `root` and its children (the pool's processes)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                stat = handle.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(entry) == root or int(fields[1]) == root:
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


worker = None
try:
    with psycopg.connect(url, autocommit=True) as db:
        with open(os.path.join(here, "schema.sql")) as schema:
            db.execute(schema.read())
        tenants = []
        for t in range(args.tenants):
            tenant = str(uuid.uuid4())
            secret = "whsec_" + base64.b64encode(os.urandom(24)).decode()
            db.execute("INSERT INTO endpoints (tenant_id, url, secret) VALUES (%s, %s, %s)", (tenant, f"{args.receiver}/p{t}", secret))
            tenants.append(tenant)

    environment = dict(os.environ, PEER_AMQP_URL=args.amqp, PEER_DATABASE_URL=url, PEER_QUEUE=queue, PYTHONPATH=here)
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "peer_tasks", "worker", "--pool", args.pool, "--concurrency", str(args.concurrency),
         "--loglevel", "warning", "--without-gossip", "--without-mingle", "--without-heartbeat", "-Q", queue],
        env=environment, cwd=here, stdout=subprocess.DEVNULL)
    os.environ.update(PEER_AMQP_URL=args.amqp, PEER_DATABASE_URL=url, PEER_QUEUE=queue)
    sys.path.insert(0, here)
    import peer_tasks  # noqa: E402 (its configuration reads the environment set above)

    # The worker is up once it consumes the queue.
    deadline = time.time() + 60
    with Connection(args.amqp) as connection:
        channel = connection.channel()
        while True:
            try:
                _, _, consumers = channel.queue_declare(queue=queue, passive=True)
                if consumers > 0:
                    break
            except Exception:
                channel = connection.channel()
            if time.time() > deadline:
                raise SystemExit("the Celery worker did not consume within 60 s")
            time.sleep(0.1)

    cpu_before = cpu_seconds(worker.pid)
    pad = "x" * 900
    first = time.time()
    for n in range(args.events):
        event = {"id": f"evt_{n}", "type": "client.created", "tenant_id": tenants[n % len(tenants)],
                 "data": {"n": n, "client": {"name": "Bench Client", "email": f"client{n}@example.com"}, "pad": pad}}
        peer_tasks.deliver.apply_async(args=[event], queue=queue)
    published = time.time()
    with psycopg.connect(url, autocommit=True) as db:
        deadline = time.time() + 900
        while True:
            done = db.execute("SELECT count(*) FROM deliveries WHERE status = 'delivered'").fetchone()[0]
            if done >= args.events:
                break
            if time.time() > deadline:
                raise SystemExit(f"only {done} of {args.events} delivered within 900 s")
            time.sleep(0.2)
        last = db.execute("SELECT extract(epoch FROM max(delivered_at)) FROM deliveries").fetchone()[0]
    cpu = cpu_seconds(worker.pid) - cpu_before
    elapsed = float(last) - first
    print(json.dumps({
        "deliveries_per_second": args.events / elapsed, "events": args.events, "seconds": elapsed,
        "publish_seconds": published - first, "worker_cpu_us_per_delivery": cpu * 1e6 / args.events,
        "pool": args.pool, "concurrency": args.concurrency,
    }))
finally:
    if worker is not None:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
    try:
        with Connection(args.amqp) as connection:
            connection.channel().queue_delete(queue=queue)
    except Exception:
        pass
    with psycopg.connect(args.database, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
