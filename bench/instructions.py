#!/usr/bin/env python3
"""Instructions per request of a server binary, counted by callgrind: repeatable whatever
else the machine does, unlike wall-clock throughput on a shared 2-core machine.

    bench/instructions.py BINARY [QUERY]

Runs BINARY under `valgrind --tool=callgrind` twice, on a fresh SQLite file, sending 500 and
then 4,500 POSTs of QUERY (default `{ __typename }`) one after the other on one keep-alive
connection, and prints the difference divided by 4,000: start-up and shutdown cancel out.
`NNN` in QUERY is replaced by the request's number, which makes every document new (no
document cache hits).
"""
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

PORT = 18203


def collected(binary, n, query):
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(
            os.environ,
            DATABASE_URL=f"sqlite://{tmp}/chat.db?mode=rwc",
            JWT_SECRET="x" * 40,
            BIND_ADDR=f"127.0.0.1:{PORT}",
            RUST_LOG="warn",
        )
        log = os.path.join(tmp, "valgrind.log")
        server = subprocess.Popen(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={tmp}/callgrind.out", binary],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=open(log, "w"),
        )
        for _ in range(600):
            try:
                probe = http.client.HTTPConnection("127.0.0.1", PORT, timeout=5)
                probe.request("GET", "/healthz")
                probe.getresponse().read()
                break
            except OSError:
                time.sleep(0.1)
        conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=60)
        for i in range(n):
            body = json.dumps({"query": query.replace("NNN", str(i))})
            conn.request("POST", "/graphql", body=body, headers={"content-type": "application/json"})
            response = conn.getresponse()
            response.read()
            assert response.status in (200, 400), response.status
        server.send_signal(signal.SIGTERM)
        server.wait()
        return int(re.search(r"Collected : (\d+)", open(log).read()).group(1))


def main():
    binary = sys.argv[1]
    query = sys.argv[2] if len(sys.argv) > 2 else "{ __typename }"
    low, high = collected(binary, 500, query), collected(binary, 4500, query)
    print(f"{binary}: {(high - low) / 4000:,.0f} instructions per request")


if __name__ == "__main__":
    main()
