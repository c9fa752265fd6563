#!/usr/bin/env python3
"""Cold start of the Lambda bootstrap: process start -> first poll for an event.

Serves a minimal Lambda Runtime API on 127.0.0.1 that records when the function's
first `GET /2018-06-01/runtime/invocation/next` arrives, starts the irtlake binary as
the function (AWS_LAMBDA_RUNTIME_API set, STAGE, LAKE_URI) and measures the time from
spawning the process to that request: everything the binary does before it can take
its first event (runtime, JSON logging, configuration, lake client). Repeated, with
the median and the worst printed. Usage: cold_start.py BINARY LAKE_URI [RUNS]
"""
import http.server
import json
import os
import statistics
import subprocess
import sys
import threading
import time

arrived = threading.Event()


class RuntimeApi(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server naming)
        if self.path.endswith("/runtime/invocation/next"):
            arrived.set()
        # Never hand out an event: the measurement ends at the first poll.
        time.sleep(0.5)
        self.send_response(503)
        self.end_headers()

    def log_message(self, *args):
        pass


def main():
    binary, lake_uri = sys.argv[1], sys.argv[2]
    runs = int(sys.argv[3]) if len(sys.argv) > 3 else 10
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RuntimeApi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = dict(os.environ)
    env.update({
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{server.server_address[1]}",
        "AWS_LAMBDA_FUNCTION_NAME": "irtlake-kpis",
        "AWS_LAMBDA_FUNCTION_VERSION": "1",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "2048",
        "STAGE": "kpis",
        "LAKE_URI": lake_uri,
        "RUST_LOG": "warn",
    })
    times = []
    for _ in range(runs):
        arrived.clear()
        start = time.perf_counter()
        proc = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        ok = arrived.wait(timeout=30)
        elapsed = time.perf_counter() - start
        proc.kill()
        proc.wait()
        if not ok:
            sys.exit("the function never polled for an event")
        times.append(elapsed * 1000)
    server.shutdown()
    result = {
        "bench": "lambda_cold_start",
        "runs": runs,
        "median_ms": round(statistics.median(times), 2),
        "max_ms": round(max(times), 2),
        "binary_bytes": os.path.getsize(binary),
    }
    print(json.dumps(result))
    print(f"lambda cold start (process start -> first event poll): median "
          f"{result['median_ms']} ms, worst {result['max_ms']} ms over {runs} starts",
          file=sys.stderr)


if __name__ == "__main__":
    main()
