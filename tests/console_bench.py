#!/usr/bin/python3
"""Times the web console's pages on a running member: each kind of page asked --requests
times with varied parameters (random records, subjects, blocks; common, rare and
one-character name fragments), one after another over one keep-alive connection, from
request to the last byte of the page. Prints p50, p95 and the slowest per kind and over all.

Made for a chain filled by `caihong bench --mix records` (docs/PERFORMANCE.md, "Console");
works on any chain. Python's standard library only.

    tests/console_bench.py --url http://127.0.0.1:28601 --requests 40
"""

import argparse
import http.client
import json
import random
import re
import sys
import time
import urllib.parse

# Name fragments: common (in most names), middling, rare, single characters.
FRAGMENTS = ["建设工程", "有限公司", "东胜", "康巴什鑫", "路桥", "源建", "鑫", "华技监理", "城丰", "桥7"]


class Client:
    def __init__(self, url):
        parts = urllib.parse.urlsplit(url)
        self.host, self.port = parts.hostname, parts.port or 80
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=120)

    def get(self, path):
        started = time.perf_counter()
        self.conn.request("GET", path)
        response = self.conn.getresponse()
        body = response.read()
        elapsed = time.perf_counter() - started
        if response.status != 200:
            print(f"GET {path}: {response.status}\n{body[:500]!r}", file=sys.stderr)
            sys.exit(1)
        return elapsed, body.decode("utf-8", "replace")


def percentile(sorted_values, p):
    return sorted_values[min(len(sorted_values) - 1, int(round(p * (len(sorted_values) - 1))))]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--requests", type=int, default=40, help="per kind of page")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    c = Client(args.url)

    status = json.loads(c.get("/v1/status")[1])
    height = status["height"]
    _, credit_page = c.get("/console/credit")
    total = int(re.search(r"链上共 <strong>(\d+)", credit_page).group(1))
    print(f"chain: height {height}, {total} credit records")
    if total == 0:
        sys.exit("no credit records on this chain")

    def record_id():
        return rng.randint(1, total)

    def subject_of_record():
        record = json.loads(c.get(f"/v1/credit/records/{record_id()}")[1])
        return record["record"]["subject_uscc"]

    def block_with_txs():
        for _ in range(20):
            h = rng.randint(1, height)
            block = json.loads(c.get(f"/v1/blocks/{h}")[1])
            if block["txs"]:
                return h, block["txs"]
        return 1, []

    kinds = {
        "alliance": lambda: "/console",
        "subject search": lambda: "/console/subjects?q=" + urllib.parse.quote(rng.choice(FRAGMENTS)),
        "subject": lambda: "/console/subjects/" + subject_of_record(),
        "credit list": lambda: "/console/credit",
        "credit list, filtered": lambda: "/console/credit?kind=commendation&from=2025-06-01&to=2025-06-30",
        "credit list, deep page": lambda: f"/console/credit?before={record_id()}",
        "credit record": lambda: f"/console/credit/{record_id()}",
        "credit record, verified": lambda: f"/console/credit/{record_id()}?verify=1",
        "certificates": lambda: "/console/certificates",
        "experts": lambda: "/console/experts",
        "blocks": lambda: f"/console/blocks?before={rng.randint(2, height + 1)}",
        "block": lambda: f"/console/blocks/{block_with_txs()[0]}",
        "transaction": lambda: "/console/tx/" + (block_with_txs()[1] or ["00" * 32])[0],
        "node": lambda: "/console/node",
    }
    everything = []
    rows = []
    for name, make in kinds.items():
        times = []
        for _ in range(args.requests):
            path = make()
            elapsed, _ = c.get(path)
            times.append(elapsed)
        times.sort()
        everything += times
        rows.append((name, percentile(times, 0.5), percentile(times, 0.95), times[-1]))
    everything.sort()
    print(f"| page | p50 ms | p95 ms | max ms |  ({args.requests} requests each)")
    print("| --- | --- | --- | --- |")
    for name, p50, p95, worst in rows:
        print(f"| {name} | {p50 * 1000:.1f} | {p95 * 1000:.1f} | {worst * 1000:.1f} |")
    print(f"| all {len(everything)} | {percentile(everything, 0.5) * 1000:.1f} | "
          f"{percentile(everything, 0.95) * 1000:.1f} | {everything[-1] * 1000:.1f} |")


if __name__ == "__main__":
    main()
