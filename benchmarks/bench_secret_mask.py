"""Cost of masking a job's secret values in its output (hodei.redaction.SecretMask),
per line, in the worker's chunks of 2,000 lines of ~80 bytes. Prints one row per case."""

from __future__ import annotations

import time

from hodei.redaction import SecretMask

LINES = 200_000
CHUNK = 2_000


def run(secrets: int, hit_every: int) -> float:
    """Nanoseconds per line; `hit_every`: one line in that many holds a secret (0: none)."""
    mask = SecretMask([f"secret-value-{k}-abcdef" for k in range(secrets)])
    lines = [
        b"line %06d some ordinary output text of a job, about eighty bytes long" % i
        + (b" secret-value-0-abcdef" if hit_every and i % hit_every == 0 else b"")
        for i in range(LINES)
    ]
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for i in range(0, LINES, CHUNK):
            mask.lines(lines[i : i + CHUNK])
        best = min(best, time.perf_counter() - start)
    return best / LINES * 1e9


def main() -> None:
    print("secrets  lines with one   ns/line (best of 3)")
    for secrets in (1, 4):
        for hit_every in (0, 100_000, 100):
            share = "none" if not hit_every else f"1 in {hit_every}"
            print(f"{secrets:>7}  {share:<14}  {run(secrets, hit_every):>8.0f}")


if __name__ == "__main__":
    main()
