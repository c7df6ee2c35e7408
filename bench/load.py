"""A closed-loop HTTP load generator: wrk, a C program, so the load takes little of the cores.

On a 2-core machine the load generator shares the cores with the server. The
aiohttp client this module used before spent about 0.65 of a core at 1,300
requests/s, which capped what two worker processes could show (B1 measured
1.12-1.20x for two workers with it, 1.44-1.55x with wrk). wrk keeps
``concurrency`` keep-alive connections busy for ``seconds`` and reports
latency percentiles; the URLs and headers (a bearer token) go to it in a Lua
script file readable only by us, never on its command line.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit


@dataclass
class LoadResult:
    """Completed requests, errors, elapsed seconds and latency percentiles (ms)."""

    requests: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float

    @property
    def rate(self) -> float:
        """Requests per second."""
        return self.requests / self.seconds if self.seconds else 0.0


_SCRIPT = """
local paths = %(paths)s
local method = %(method)s
local body = %(body)s
local n = 0
%(headers)s
request = function()
  n = n + 1
  return wrk.format(method, paths[(n %% #paths) + 1], nil, body)
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"completed": %%d, "status_errors": %%d, "socket_errors": %%d, "micros": %%d, '
    .. '"p50_us": %%f, "p99_us": %%f}\\n',
    summary.requests, e.status, e.connect + e.read + e.write + e.timeout, summary.duration,
    latency:percentile(50.0), latency:percentile(99.0)))
end
"""


def _lua_string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)  # a JSON string is a Lua string literal here


def _script(paths: list[str], headers: dict[str, str], method: str, body: str | None) -> str:
    return _SCRIPT % {
        "paths": "{" + ", ".join(_lua_string(p) for p in paths) + "}",
        "method": _lua_string(method),
        "body": "nil" if body is None else _lua_string(body),
        "headers": "\n".join(
            f"wrk.headers[{_lua_string(k)}] = {_lua_string(v)}" for k, v in headers.items()
        ),
    }


def run_load(
    urls: list[str],
    headers: dict[str, str],
    concurrency: int,
    seconds: float,
    *,
    method: str = "GET",
    body: str | None = None,
) -> LoadResult:
    """Run load against ``urls`` (one host) with wrk and return its figures.

    Every request is ``method`` with ``body``; a response other than 2xx or 3xx
    counts as an error, not as a request.
    """
    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("the load generator is wrk: apt-get install wrk")
    base = urlsplit(urls[0])
    paths = [urlsplit(url).path for url in urls]
    with tempfile.TemporaryDirectory(prefix="sekisho-load-") as tmp:
        script = Path(tmp) / "load.lua"
        script.write_text(_script(paths, headers, method, body))
        script.chmod(0o600)
        out = subprocess.run(
            [
                wrk,
                "--threads",
                "1",
                "--connections",
                str(concurrency),
                "--duration",
                f"{max(1, math.ceil(seconds))}s",
                "--timeout",
                "30s",
                "--script",
                str(script),
                f"{base.scheme}://{base.netloc}/",
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=seconds + 120,
        ).stdout
    figures = json.loads(out.strip().splitlines()[-1])
    errors = int(figures["status_errors"]) + int(figures["socket_errors"])
    return LoadResult(
        requests=int(figures["completed"]) - int(figures["status_errors"]),
        errors=errors,
        seconds=float(figures["micros"]) / 1e6,
        p50_ms=float(figures["p50_us"]) / 1000,
        p99_ms=float(figures["p99_us"]) / 1000,
    )
