"""Run every benchmark and print one table: ``python -m bench [--quick] [--only B2,B4]``.

B1 also measures each token of ``--tokens`` (SoftHSM only with ``--quick``, else SoftHSM,
opencryptoki and a TPM, started here) for ``--token-seconds`` per row.

Each figure stands next to its baselines measured in the same run, with the
ratio and the target. The exit status is 0 whenever the benchmarks ran,
whatever they measured. A full run also writes docs/performance.md.
"""

from __future__ import annotations

import argparse
import importlib
import socket
import sys
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from bench.b1_tokens import B1Tokens
from bench.common import Result, machine, table

BENCHES: dict[str, str] = {
    "B1": "bench.b1_signing",
    "B2": "bench.b2_ledger",
    "B3": "bench.b3_proofs",
    "B4": "bench.b4_serve",
    "B5": "bench.b5_small_docs",
    "B6": "bench.b6_witness",
    "B7": "bench.b7_mixed",
}


def postgres_url() -> str | None:
    """The local PostgreSQL for B2, if one answers (a throwaway database is made)."""
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            pass
    except OSError:
        return None
    import asyncio
    import uuid

    import asyncpg

    name = f"sekisho_bench_{uuid.uuid4().hex[:8]}"

    async def create() -> None:
        conn = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/postgres")
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(create())
    return f"postgres://postgres@127.0.0.1:5432/{name}"


def run_one(bench_id: str, quick: bool, tokens: B1Tokens | None = None) -> list[Result]:
    """Run one benchmark module; a failure becomes a row, not a crash."""
    try:
        module = importlib.import_module(BENCHES[bench_id])
    except ModuleNotFoundError as exc:
        return [Result(bench_id, f"not run: {exc}", float("nan"), "")]
    runner: Callable[..., list[Result]] = module.run
    try:
        if bench_id == "B2":
            return runner(quick, postgres_url())
        if bench_id == "B1" and tokens is not None:
            return runner(quick, tokens)
        return runner(quick)
    except Exception as exc:  # report and carry on with the other benchmarks
        traceback.print_exc()
        return [Result(bench_id, f"failed: {type(exc).__name__}: {exc}", float("nan"), "")]


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run, print, and (full runs) write docs/performance.md."""
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--quick", action="store_true", help="small sizes, seconds (used by tests)")
    parser.add_argument("--only", default="", help="comma-separated ids, e.g. B2,B4")
    parser.add_argument(
        "--output", help="Markdown file to write (default docs/performance.md on full runs)"
    )
    parser.add_argument(
        "--tokens",
        help="B1's tokens, comma-separated: softhsm, opencryptoki, tpm, or none "
        "(default: softhsm with --quick, else all three)",
    )
    parser.add_argument(
        "--token-seconds", type=float, help="B1 seconds per token row (default 0.3 quick, else 3)"
    )
    args = parser.parse_args(argv)
    try:
        tokens = B1Tokens.from_args(args.tokens, args.token_seconds, args.quick)
    except ValueError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    wanted = [b.strip().upper() for b in args.only.split(",") if b.strip()] or list(BENCHES)
    unknown = [b for b in wanted if b not in BENCHES]
    if unknown:
        print(
            f"bench: unknown benchmark(s) {unknown}; choose from {list(BENCHES)}", file=sys.stderr
        )
        return 2
    started = time.perf_counter()
    results: list[Result] = []
    for bench_id in wanted:
        print(
            f"bench: running {bench_id} ({'quick' if args.quick else 'full'})...", file=sys.stderr
        )
        results.extend(run_one(bench_id, args.quick, tokens))
    rendered = table(results)
    print(rendered)
    output = args.output or (None if args.quick else "docs/performance.md")
    if output:
        write_report(Path(output), rendered, args.quick, time.perf_counter() - started)
    return 0


def write_report(path: Path, rendered: str, quick: bool, seconds: float) -> None:
    """The results with the machine description, for docs/."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = path.read_text().split("<!-- results -->")[0] if path.exists() else "# Performance\n\n"
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    path.write_text(
        f"{header}<!-- results -->\n"
        f"Measured {stamp} by `python -m bench{' --quick' if quick else ''}` "
        f"in {seconds:.0f} s on: {machine()}.\n\n{rendered}\n"
    )


if __name__ == "__main__":
    raise SystemExit(main())
