"""How long the outbox page's reader takes to search and filter many files.

    python bench/outbox.py [--files 5000] [--body-kb 60]

Writes `--files` messages as OutboxConnection does (each with a base64 body of
about `--body-kb` kB, as a compiled newsletter has, and the kind and district
headers) into a temporary folder, then times `core.outbox.list_messages`
with a recipient search, a kind filter and a coordinator's district scope:
cold (every header block read from disk) and warm (from the in-process
summary cache), and, for comparison, a full parse of every file as the
email package's header parser does it (it reads the whole file).
"""
import argparse
import base64
import email.policy
import os
import sys
import tempfile
import time
from email.parser import BytesHeaderParser

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from core import outbox  # noqa: E402

KINDS = ("newsletter", "test", "invitation", "confirmation")
DISTRICTS = ("08115", "08116", "08111", "08125")


def write_files(directory, count, body_kb):
    body = base64.encodebytes(os.urandom(body_kb * 750)).replace(b"\n", b"\r\n")
    for n in range(count):
        stem = f"20261121T{n // 3600 % 24:02d}{n // 60 % 60:02d}{n % 60:02d}{n:06d}Z-{n:012x}"
        head = (
            f"From: E-Government-Koordination <noreply@lrabb.de>\r\nTo: person{n}@gemeinde{n % 50}.example\r\n"
            f"Subject: =?utf-8?b?{base64.b64encode(f'Neues für Person {n} – Ausgabe {n % 12}'.encode()).decode()}?=\r\n"
            f"Date: Sat, 21 Nov 2026 10:00:00 +0000\r\nMessage-ID: <{n:024x}@lrabb.de>\r\n"
            f"List-Unsubscribe: <http://localhost/unsubscribe/{'x' * 120}>, <mailto:inbound@lrabb.de?subject=x>\r\n"
            f"X-EGov-Kind: {KINDS[n % 4]}\r\nX-EGov-District: {DISTRICTS[n % 4]}\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        )
        with open(os.path.join(directory, stem + ".eml"), "wb") as fh:
            fh.write(head.encode("ascii") + body)


def timed(label, run):
    started = time.perf_counter()
    result = run()
    print(f"{label:<58} {time.perf_counter() - started:7.3f} s")
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--body-kb", type=int, default=60)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        write_files(directory, args.files, args.body_kb)
        print(f"{args.files} files of about {args.body_kb} kB in {directory}")
        filters = outbox.Filters(recipient="GEMEINDE8.", kind="newsletter")
        scope = frozenset({"08115"})

        def search():
            return outbox.list_messages(directory, 1, 50, filters, district_keys=scope)

        def full_parse():
            for stem in outbox.list_stems(directory):
                with open(os.path.join(directory, stem + ".eml"), "rb") as fh:
                    BytesHeaderParser(policy=email.policy.default).parse(fh)

        outbox.summaries.clear()
        page = timed("search + kind + scope, cold (header blocks from disk)", search)
        timed("search + kind + scope, warm (summary cache)", search)
        timed("same, unfiltered admin page (only 50 files read)", lambda: outbox.list_messages(directory, 1, 50))
        timed("for comparison: BytesHeaderParser on every whole file", full_parse)
        print(f"matches: {page.total}")


if __name__ == "__main__":
    main()
