"""How long one argon2id verification takes for candidate parameters, on this machine.

    .venv/bin/python bench/argon2_params.py [-n 30]

The candidates are OWASP's equivalent argon2id settings (same resistance, trading
memory for passes) and argon2-cffi's default (RFC 9106 "low memory"). Prints median and
p90 per candidate, one thread, no other load from this script.
"""

from __future__ import annotations

import argparse
import statistics
import time

import argon2

CANDIDATES = [  # (memory KiB, passes, lanes, note)
    (7168, 5, 1, "OWASP (7 MiB, t=5)"),
    (12288, 3, 1, "OWASP (12 MiB, t=3)"),
    (19456, 2, 1, "OWASP minimum (19 MiB, t=2)"),
    (47104, 1, 1, "OWASP first choice (46 MiB, t=1)  <- Hubbub default"),
    (65536, 1, 1, "64 MiB, t=1"),
    (65536, 3, 4, "argon2-cffi default / RFC 9106 low-memory (64 MiB, t=3, p=4)"),
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=30)
    args = parser.parse_args()
    for memory, passes, lanes, note in CANDIDATES:
        hasher = argon2.PasswordHasher(
            memory_cost=memory, time_cost=passes, parallelism=lanes, type=argon2.Type.ID
        )
        encoded = hasher.hash("bench-password")
        timings = []
        for _ in range(args.n):
            start = time.perf_counter()
            hasher.verify(encoded, "bench-password")
            timings.append((time.perf_counter() - start) * 1000)
        timings.sort()
        p90 = timings[int(len(timings) * 0.9) - 1]
        print(f"{statistics.median(timings):7.1f} ms median {p90:7.1f} ms p90   {note}")


if __name__ == "__main__":
    main()
