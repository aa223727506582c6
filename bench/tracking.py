"""Benchmark of the open pixel and the click redirect of a running `flask serve` (issue 11, item 5).

    python bench/tracking.py [--tracked 2000] [--recipients 5000] [--duration 10] [--connections 50]

Everything runs in a temporary instance folder: SQLite and the embedded
Redis that `flask serve` starts, Postfix's `smtp-sink` on a free local port
as the mail server, and `flask serve` itself (gunicorn and two RQ workers),
exactly as an operator starts it.

First a tracked newsletter goes to `--tracked` recipients through that
server's own workers; its deliveries' real tokens (`tracking_context`) and
its links are what the load uses. Then `wrk` (a C load generator: one
process, no Python of its own competing for the two CPUs, and a Lua script
that rotates through the tokens so every request names another delivery)
drives, at `--connections` concurrency, one after the other:

- a static file of the same server (`/static/style.css`, served by the app),
- the open pixel `/t/o/<token>.gif`,
- the click redirect `/t/c/<token>/<link id>`,

first alone, then each during a send of `--recipients` mails (a new
newsletter per target, sent by the same workers). It prints requests/s,
p50/p99 and errors, and ends with [PASS]/[FAIL] lines: pixel and redirect
≥ 0.8× the static file's requests/s with 0 errors alone, 0 errors during a
send, every mail delivered.

The rate limits are raised for the run, so that every request is counted
(the per-address limiter's Redis round trip still happens): the measured
path is the dearest one, a database write per request.
"""
import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# The checkout first: bench/reach.py must not shadow the reach package.
sys.path.insert(0, str(ROOT))
if str(HERE) not in sys.path:
    sys.path.append(str(HERE))

import send as send_bench  # noqa: E402  (bench/send.py: the instance, smtp-sink and seeding helpers)

WRK = shutil.which("wrk") or "/usr/bin/wrk"
FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"
TARGET_RATIO = 0.8
STATIC_PATH = "/static/style.css"

# Rotates through the request paths in $BENCH_PATHS (each wrk thread from
# another starting point) and writes the figures as JSON to $BENCH_RESULT.
WRK_SCRIPT = r"""
local paths = {}
for line in io.lines(os.getenv("BENCH_PATHS")) do paths[#paths + 1] = line end
local agent = os.getenv("BENCH_AGENT")
local counter = 0
local threads = 0

setup = function(thread)
  thread:set("offset", threads * 7919)
  threads = threads + 1
end

init = function(args)
  counter = offset or 0
end

request = function()
  counter = counter + 1
  return wrk.format("GET", paths[(counter % #paths) + 1], {["User-Agent"] = agent})
end

done = function(summary, latency, requests)
  local e = summary.errors
  local out = io.open(os.getenv("BENCH_RESULT"), "w")
  out:write(string.format(
    '{"requests": %d, "duration_us": %d, "connect": %d, "read": %d, "write": %d, "status": %d, ' ..
    '"timeout": %d, "p50_us": %d, "p99_us": %d}',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
  out:close()
end
"""


# --- the server -------------------------------------------------------------------------------


class Serve:
    """`flask serve` in the instance folder, in its own session so nothing is left behind."""

    def __init__(self, workdir, env, web_workers, workers):
        self.port = send_bench.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = os.path.join(workdir, "serve.log")
        command = [sys.executable, "-m", "flask", "serve", "--port", str(self.port),
                   "--workers", str(workers), "--web-workers", str(web_workers)]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True)

    def wait_healthy(self, timeout=90.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"flask serve exited with {self.process.returncode}; see {self.log_path}")
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"flask serve did not become healthy; see {self.log_path}")

    def stop(self, timeout=60.0):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.process.pid, signal.SIGKILL)  # whatever of its session is left
        except ProcessLookupError:
            pass
        self.process.wait()


# --- sends --------------------------------------------------------------------------------------


def start_send(app, district_key, tracking=True):
    """A new newsletter to the district's list, handed to the server's workers; its id."""
    from core.extensions import db
    from newsletter import jobs, services
    from newsletter.models import Newsletter

    newsletter_id = send_bench.create_newsletter(app, district_key, tracking)
    with app.app_context():
        newsletter = db.session.get(Newsletter, newsletter_id)
        services.send_now(newsletter)
        db.session.commit()
        jobs.enqueue_senders(newsletter_id)
        db.session.remove()
    return newsletter_id


def wait_sent(app, newsletter_id, timeout):
    deadline = time.monotonic() + timeout
    while True:
        rows = send_bench.unfinished(app, newsletter_id)
        if not rows:
            return
        stuck = {status: n for status, n in rows.items() if status in ("failed", "bounced", "suppressed")}
        if stuck:
            raise RuntimeError(f"rows that will not be sent: {rows}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"send {newsletter_id} not finished after {timeout}s: {rows}")
        time.sleep(0.2)


def tracked_paths(app, newsletter_id):
    """(pixel paths, click paths) of the newsletter's deliveries, from their real tokens."""
    from urllib.parse import urlsplit

    from sqlalchemy import select

    from core.extensions import db
    from newsletter.models import Delivery, Link
    from newsletter.tracking import tracking_context

    with app.app_context():
        delivery_ids = db.session.scalars(select(Delivery.id).where(Delivery.newsletter_id == newsletter_id)).all()
        link_ids = db.session.scalars(select(Link.id).where(Link.newsletter_id == newsletter_id)).all()
        pixels, clicks = [], []
        for n, delivery_id in enumerate(delivery_ids):
            context = tracking_context(delivery_id)
            pixels.append(urlsplit(context["open_url"]).path)
            clicks.append(urlsplit(context["click_base"]).path + f"/{link_ids[n % len(link_ids)]}")
        db.session.remove()
    if not link_ids:
        raise RuntimeError("the tracked newsletter has no links")
    random.Random(11).shuffle(pixels)
    random.Random(12).shuffle(clicks)
    return pixels, clicks


def tracking_rows(app, newsletter_id):
    """(rows, hits) of the newsletter's tracking events."""
    from sqlalchemy import func, select

    from core.extensions import db
    from newsletter.models import Delivery, TrackingEvent

    with app.app_context():
        rows, hits = db.session.execute(
            select(func.count(), func.coalesce(func.sum(TrackingEvent.hits), 0))
            .join(Delivery, Delivery.id == TrackingEvent.delivery_id).where(Delivery.newsletter_id == newsletter_id)
        ).one()
        db.session.remove()
    return rows, int(hits)


# --- load ---------------------------------------------------------------------------------------


def run_wrk(serve, workdir, name, paths, args, duration):
    paths_file = os.path.join(workdir, f"paths-{name}.txt")
    with open(paths_file, "w") as fh:
        fh.write("\n".join(paths) + "\n")
    script = os.path.join(workdir, "rotate.lua")
    with open(script, "w") as fh:
        fh.write(WRK_SCRIPT)
    result_file = os.path.join(workdir, f"result-{name}.json")
    if os.path.exists(result_file):
        os.unlink(result_file)
    env = dict(os.environ, BENCH_PATHS=paths_file, BENCH_RESULT=result_file, BENCH_AGENT=FIREFOX)
    command = [WRK, "-t", str(args.threads), "-c", str(args.connections), "-d", f"{max(1, round(duration))}s",
               "--timeout", f"{max(1, round(args.request_timeout))}s", "-s", script, serve.url]
    completed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=duration + 60)
    if completed.returncode != 0 or not os.path.exists(result_file):
        raise RuntimeError(f"wrk failed ({completed.returncode}): {completed.stdout}\n{completed.stderr}")
    with open(result_file) as fh:
        figures = json.load(fh)
    seconds = figures["duration_us"] / 1e6
    errors = sum(figures[key] for key in ("connect", "read", "write", "status", "timeout"))
    return {
        "name": name, "requests": figures["requests"], "rate": figures["requests"] / seconds if seconds else 0.0,
        "p50_ms": figures["p50_us"] / 1000, "p99_ms": figures["p99_us"] / 1000, "errors": errors,
        "error_detail": {key: figures[key] for key in ("connect", "read", "write", "status", "timeout")
                         if figures[key]},
    }


def line(result, note=""):
    detail = f" {result['error_detail']}" if result["error_detail"] else ""
    return (f"{result['name']:<18} {result['rate']:8.0f} req/s  p50 {result['p50_ms']:7.1f} ms  "
            f"p99 {result['p99_ms']:7.1f} ms  errors {result['errors']}{detail}{note}")


# --- main -----------------------------------------------------------------------------------------


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tracked", type=int, default=2000, help="deliveries whose tokens the load uses (2000)")
    parser.add_argument("--recipients", type=int, default=5000, help="list size of the sends during load (5000)")
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement (10)")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of unmeasured load before each (2)")
    parser.add_argument("--connections", type=int, default=50, help="concurrent connections (50)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (2)")
    parser.add_argument("--request-timeout", type=int, default=5, help="wrk's per-request timeout in s (5)")
    parser.add_argument("--web-workers", type=int, default=None, help="gunicorn processes (flask serve's default)")
    parser.add_argument("--workers", type=int, default=2, help="RQ workers (2)")
    parser.add_argument("--timeout", type=float, default=300, help="give up a send after this many seconds")
    parser.add_argument("--keep", action="store_true", help="keep the instance folder (logs, database)")
    return parser.parse_args(argv)


def environment(workdir, sink):
    env = dict(os.environ)
    for name in ("DATABASE_URL", "REDIS_URL"):
        env.pop(name, None)  # never the caller's databases
    env.update({
        "INSTANCE_PATH": workdir,
        "SECRET_KEY": "bench-secret",
        "BASE_URL": "https://egov.example",
        "MAIL_SERVER": "127.0.0.1",
        "MAIL_PORT": str(sink.port),
        "MAIL_DEFAULT_SENDER": "E-Government-Koordination <newsletter@egov.example>",
        "PYTHONUNBUFFERED": "1",
        # Every request counted: the dearest path is the one measured.
        "TRACKING_TOKEN_HITS_PER_WINDOW": "1000000000",
        "TRACKING_ADDRESS_RATE_LIMIT": "1000000 per minute",
    })
    os.environ.clear()
    os.environ.update(env)
    return env


def main(argv=None):
    args = parse_args(argv)
    if not os.path.exists(WRK):
        print("wrk is missing: apt-get install -y wrk", file=sys.stderr)
        return 2
    workdir = tempfile.mkdtemp(prefix="egovtrk-", dir="/tmp")  # short: the Redis socket lives here
    sink = send_bench.SmtpSink(workdir)
    serve = None
    ok = False
    try:
        env = environment(workdir, sink)
        from app import create_app

        app = create_app()
        send_bench.prepare_database(app, drop=False)
        send_bench.seed(app, args.recipients, args.tracked)
        web_workers = args.web_workers or 2
        serve = Serve(workdir, env, web_workers, args.workers)
        serve.wait_healthy()
        print(f"instance {workdir}: flask serve on {serve.url} ({web_workers} web, {args.workers} RQ workers), "
              f"smtp-sink on port {sink.port}", flush=True)

        tracked_district, load_district = send_bench.SMALL_DISTRICT[0], send_bench.BIG_DISTRICT[0]
        started = time.perf_counter()
        tracked = start_send(app, tracked_district)
        wait_sent(app, tracked, args.timeout)
        print(f"tracked newsletter: {args.tracked} mails sent in {time.perf_counter() - started:.1f} s", flush=True)
        pixels, clicks = tracked_paths(app, tracked)
        targets = [("static file", [STATIC_PATH]), ("open pixel", pixels), ("click redirect", clicks)]
        mails = args.tracked

        alone, during = {}, {}
        for name, paths in targets:
            run_wrk(serve, workdir, "warmup", paths, args, args.warmup)
            alone[name] = run_wrk(serve, workdir, name, paths, args, args.duration)
            print("alone:       " + line(alone[name]), flush=True)
        for name, paths in targets:
            newsletter_id = start_send(app, load_district)
            mails += args.recipients
            result = run_wrk(serve, workdir, name, paths, args, args.duration)
            still = sum(send_bench.unfinished(app, newsletter_id).values())
            started = time.perf_counter()
            wait_sent(app, newsletter_id, args.timeout)
            note = (f"  (send still running at the end: {still} rows left)" if still else
                    "  (the send finished before the measurement did)")
            during[name] = result
            print("during send: " + line(result, note) + f"; the rest sent {time.perf_counter() - started:.1f} s later",
                  flush=True)

        rows, hits = tracking_rows(app, tracked)
        time.sleep(0.3)  # smtp-sink writes its counters when a session ends
        received = sink.messages()

        print("\n=== summary ===")
        print(f"setup: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} now; wrk {args.threads} threads, "
              f"{args.connections} connections, {args.duration:g} s per measurement; SQLite, embedded Redis")
        for name, _paths in targets:
            print("alone:       " + line(alone[name]))
        for name, _paths in targets:
            print("during send: " + line(during[name]))
        print(f"tracking rows of the tracked newsletter: {rows} rows hold {hits} counted hits "
              f"({len(pixels)} deliveries, {sum(r['requests'] for r in (*alone.values(), *during.values()))} "
              f"requests in all)")
        static = alone["static file"]["rate"]
        checks = []
        for name in ("open pixel", "click redirect"):
            ratio = alone[name]["rate"] / static if static else 0.0
            checks.append((f"{name} ≥ {TARGET_RATIO}× the static file's requests/s, alone",
                           ratio >= TARGET_RATIO, f"{ratio:.2f}×"))
            checks.append((f"{name}: 0 errors, alone", alone[name]["errors"] == 0, str(alone[name]["errors"])))
        for name, _paths in targets:
            checks.append((f"{name}: 0 errors during a send", during[name]["errors"] == 0,
                           str(during[name]["errors"])))
        checks.append(("every mail reached the SMTP server", received == mails, f"{received}/{mails}"))
        print("\n".join(send_bench.verdict_lines(checks)), flush=True)
        ok = all(passed for _label, passed, _figure in checks)
    finally:
        if serve is not None:
            serve.stop()
        sink.stop()
        send_bench.remove_workdir(workdir, args.keep)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
