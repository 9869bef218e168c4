"""What a scenario measured, what it must show, and the table."""

from __future__ import annotations

from dataclasses import dataclass, field

FIRST_TRY_MIN = 0.99  # of simultaneous connect+subscribe, at the first try


@dataclass
class Result:
    scenario: str
    requests: int = 0  # logical requests (REST calls, or sockets in the storm)
    failed: int = 0  # failed after retry (the request's deadline passed)
    status_5xx: int = 0  # answers 5xx, over all attempts (503/504 are honest)
    status_500: int = 0  # of which 500: never acceptable
    lost: int = 0  # created resources some watcher never got the event of
    duplicated: int = 0  # resources applied twice for one key + events delivered twice
    reordered: int = 0  # events delivered at an offset not above the previous one
    stale: int = 0  # stale reads / permissions 5 s after recovery
    recovery_s: float | None = None  # fault over → every hub ready (and the child back)
    first_try: float | None = None  # share of sockets connected+subscribed at once
    closes_4500: int = 0
    tracebacks: int = 0  # logged by hubbub up and its children (and extra hubs) during it
    # Must-shows that could not be checked, or whose premise did not hold (a check that
    # cannot have failed shows nothing).
    not_shown: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str | None = None  # the scenario itself could not run to its end

    def violations(self) -> list[str]:
        """The must-shows this result breaks (empty: it holds)."""
        found = [f"did not complete: {self.error}"] if self.error else []
        counts = [
            (self.failed, "request(s) failed after retry"),
            (self.status_500, "answer(s) with status 500"),
            (self.lost, "event(s) lost"),
            (self.duplicated, "duplicate(s)"),
            (self.reordered, "event(s) out of order"),
            (self.stale, "stale read(s)/permission(s) 5 s after recovery"),
            (self.tracebacks, "traceback(s) logged"),
        ]
        found += [f"{count} {what}" for count, what in counts if count]
        found += [f"not shown: {what}" for what in self.not_shown]
        if self.recovery_s is None and self.first_try is None:
            found.append("did not recover")
        if self.first_try is not None and self.first_try < FIRST_TRY_MIN:
            found.append(f"only {self.first_try:.1%} connected at the first try")
        if self.closes_4500:
            found.append(f"{self.closes_4500} socket(s) closed with 4500")
        return found


COLUMNS = (
    "scenario",
    "requests",
    "failed after retry",
    "5xx",
    "500",
    "lost",
    "duplicated",
    "reordered",
    "stale reads",
    "recovery (s)",
    "first try",
    "verdict",
)


def row(result: Result) -> list[str]:
    return [
        result.scenario,
        str(result.requests),
        str(result.failed),
        str(result.status_5xx),
        str(result.status_500),
        str(result.lost),
        str(result.duplicated),
        str(result.reordered),
        str(result.stale),
        "—" if result.recovery_s is None else f"{result.recovery_s:.1f}",
        "—" if result.first_try is None else f"{result.first_try:.1%}",
        "ok" if not result.violations() else "FAIL",
    ]


def table(results: list[Result]) -> str:
    """A Markdown table, then each scenario's violations and notes."""
    rows = [list(COLUMNS)] + [row(r) for r in results]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    lines = []
    for n, cells in enumerate(rows):
        lines.append(
            "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"
        )
        if n == 0:
            lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for result in results:
        for text in result.violations():
            lines.append(f"{result.scenario}: FAIL {text}")
        for text in result.notes:
            lines.append(f"{result.scenario}: {text}")
    return "\n".join(lines)
