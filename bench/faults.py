"""Benchmark of a send through a mail server that cuts connections and answers 421 (issue 11, item 2).

    python bench/faults.py [--recipients 10000] [--workers 2] [--cut-rate 0.03] [--outage 3]

The same list is sent twice through the real pipeline (`worker.py` processes,
SQLite and the embedded Redis in a temporary instance folder, or
`--database-url`), each time into a fresh `tests/faulty_smtp.py` server
running in this process:

- clean: a server without faults;
- faulty: a server that cuts `--cut-rate` of the DATA transactions (half in
  the middle of the message, half after it arrived and before the answer)
  and, after a third of the list, answers 421 to everything for `--outage`
  seconds.

It prints both times and their ratio and ends with [PASS]/[FAIL] lines: the
faulty send within 2× the clean one, nothing lost, duplicates ≤ cuts, no
attempt counted against a recipient because of a cut. The timing and the
instance come from `bench/send.py`.
"""
import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _load_send_bench():
    """bench/send.py as a module (bench/ is no package, and its reach.py would hide the `reach` package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_send", ROOT / "bench" / "send.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


send_bench = _load_send_bench()  # the instance, workers and timing

TARGET_SLOWDOWN = 2.0


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipients", type=int, default=10000, help="list size (10000)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (2)")
    parser.add_argument("--cut-rate", type=float, default=0.03, help="share of DATA transactions cut (0.03)")
    parser.add_argument("--outage", type=float, default=3.0, help="seconds of 421 after a third of the list (3)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the cuts (1)")
    parser.add_argument("--database-url", default=None,
                        help="PostgreSQL URL of a throwaway database: its tables are DROPPED and created afresh")
    parser.add_argument("--timeout", type=float, default=600, help="give up a send after this many seconds")
    parser.add_argument("--keep", action="store_true", help="keep the instance folder (logs, database)")
    args = parser.parse_args(argv)
    # What bench/send.py's pipeline_run reads.
    args.cold, args.tracking, args.redis_url = False, True, None
    args.parallel_jobs = args.batch_size = None
    return args


def row_figures(app, newsletter_id):
    from sqlalchemy import func, select

    from core.extensions import db
    from newsletter.models import Delivery

    with app.app_context():
        figures = db.session.execute(
            select(func.count(), func.max(Delivery.attempts), func.count().filter(Delivery.smtp_reply != "250"))
            .where(Delivery.newsletter_id == newsletter_id)
        ).one()
        db.session.remove()
    return figures


def timed_send(app, env, workdir, args, server, tag):
    env["MAIL_PORT"] = os.environ["MAIL_PORT"] = str(server.port)
    app.config["MAIL_PORT"] = server.port
    fake_sink = SimpleNamespace(process=SimpleNamespace(pid=os.getpid()))  # the server runs in this process
    run = send_bench.pipeline_run(app, env, workdir, fake_sink, send_bench.BIG_DISTRICT[0], args.recipients, args, tag)
    newsletter_id = latest_newsletter(app)
    run["rows"], run["max_attempts"], run["not_250"] = row_figures(app, newsletter_id)
    return run


def latest_newsletter(app):
    from sqlalchemy import func, select

    from core.extensions import db
    from newsletter.models import Newsletter

    with app.app_context():
        newsletter_id = db.session.execute(select(func.max(Newsletter.id))).scalar_one()
        db.session.remove()
    return newsletter_id


def main(argv=None):
    from tests.faulty_smtp import FaultySMTPServer

    args = parse_args(argv)
    workdir = tempfile.mkdtemp(prefix="egovfaults-", dir="/tmp")
    clean_server = FaultySMTPServer().start()
    ok = False
    try:
        env = send_bench.configure_environment(
            SimpleNamespace(parallel_jobs=None, batch_size=None, database_url=args.database_url, redis_url=None),
            workdir, clean_server)
        app = send_bench.open_app(env, args.workers, drop=bool(args.database_url))
        send_bench.seed(app, args.recipients, 0)
        print(f"instance {workdir}: {args.recipients} subscribers", flush=True)

        clean = timed_send(app, env, workdir, args, clean_server, "clean")
        clean_server.stop()
        print(f"clean: {args.recipients} recipients in {clean['seconds']:.2f} s", flush=True)

        faulty_server = FaultySMTPServer(cut_rate=args.cut_rate, seed=args.seed,
                                         outage_after=args.recipients // 3, outage_seconds=args.outage).start()
        try:
            faulty = timed_send(app, env, workdir, args, faulty_server, "faulty")
        finally:
            faulty_server.stop()
        print(f"faulty: {args.recipients} recipients in {faulty['seconds']:.2f} s", flush=True)

        received = faulty_server.received
        lost = args.recipients - len(received)
        duplicates = faulty_server.duplicates()
        ratio = faulty["seconds"] / clean["seconds"]
        lines = [
            "", "=== summary ===",
            f"setup: {args.workers} workers, {args.recipients} recipients, database "
            f"{app.config['SQLALCHEMY_DATABASE_URI'].split(':', 1)[0]}, {os.cpu_count()} CPUs, "
            f"load average {os.getloadavg()[0]:.2f}",
            f"clean send:  {clean['seconds']:6.2f} s = {clean['rate']:5.0f} msg/s",
            f"faulty send: {faulty['seconds']:6.2f} s = {faulty['rate']:5.0f} msg/s "
            f"({faulty_server.cuts} cuts, {faulty_server.cuts_after_data} of them after the whole message; "
            f"{faulty_server.refused_421} answers 421 during a {args.outage:.1f} s outage)",
            f"ratio faulty/clean: {ratio:.2f}×",
        ]
        checks = [
            (f"faulty send within {TARGET_SLOWDOWN:g}× the clean one", ratio <= TARGET_SLOWDOWN, f"{ratio:.2f}×"),
            ("nothing lost", lost == 0, f"{len(received)}/{args.recipients} recipients received"),
            ("duplicates ≤ cuts", duplicates <= faulty_server.cuts, f"{duplicates} ≤ {faulty_server.cuts}"),
            ("no attempt counted for a cut", faulty["max_attempts"] == 1 and faulty["not_250"] == 0,
             f"max attempts {faulty['max_attempts']}, {faulty['not_250']} rows without 250"),
        ]
        lines += send_bench.verdict_lines(checks)
        print("\n".join(lines), flush=True)
        ok = all(good for _label, good, _figure in checks)
    finally:
        clean_server.stop()
        send_bench.stop_embedded_redis()
        send_bench.remove_workdir(workdir, args.keep)
    return 0 if ok else 1


if __name__ == "__main__":
    start = time.perf_counter()
    code = main()
    print(f"({time.perf_counter() - start:.0f} s in all)")
    sys.exit(code)
