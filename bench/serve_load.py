"""Can `sparkctl bench serve`'s load generator keep up? At concurrency 128 against the vLLM stand-in set
to a fixed pace (every request at the same token rate, whatever else runs), the measured output
tokens/s against the rate the stand-in was set to. Target: >= 0.95 on 2 cores.

The stand-in runs as its own process on 127.0.0.1 (as on a node) and is stopped by its PID. Run:
`.venv/bin/python bench/serve_load.py [--concurrency 128] [--output-len 256] [--token-ms 20]`.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
import urllib.request

from sparkctl.lab.standins import vllm_server
from sparkctl.serving import sweep
from sparkctl.serving.workloads import Workload


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--concurrency", type=int, default=128)
    parser.add_argument("--output-len", type=int, default=256)
    parser.add_argument("--token-ms", type=float, default=20.0, help="the stand-in's step, per request")
    parser.add_argument("--prompts-per-concurrency", type=int, default=2)
    args = parser.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    env = {**os.environ, "STANDIN_LOAD_SECONDS": "0", "STANDIN_TOKEN_SECONDS": str(args.token_ms / 1000),
           "STANDIN_SEQUENCE_SECONDS": "0", "STANDIN_FIRST_TOKEN_SECONDS": "0", "STANDIN_PREFILL_TOKEN_SECONDS": "0"}
    server = subprocess.Popen([sys.executable, vllm_server.__file__, "m/bench", "--served-model-name", "bench",
                               "--host", "127.0.0.1", "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                with urllib.request.urlopen(url + "/health", timeout=1):
                    break
            except OSError:
                time.sleep(0.1)
        plan = sweep.Plan((Workload("fixed", 16, args.output_len),), (args.concurrency,),
                          args.prompts_per_concurrency, warmups=1)
        (level,) = sweep.run(sweep.Target(url, "bench"), plan, lambda *_: None)
    finally:
        server.terminate()
        server.wait(10)
    set_rate = args.concurrency * args.output_len / ((args.output_len - 1) * args.token_ms / 1000)
    ratio = level["output_throughput"] / set_rate
    print(f"concurrency {args.concurrency}, {args.output_len} tokens per request at {args.token_ms:g} ms each")
    print(f"set rate     {set_rate:9.1f} tok/s")
    print(f"measured     {level['output_throughput']:9.1f} tok/s  ({level['failed']} failed)")
    print(f"ratio        {ratio:9.3f}  (target >= 0.95)  median ITL {level['median_itl_ms']:.2f} ms, "
          f"p99 ITL {level['p99_itl_ms']:.2f} ms")
    return 0 if ratio >= 0.95 and not level["failed"] else 1


if __name__ == "__main__":
    sys.exit(main())
