"""A name quoted in a mail: one line, no invisible characters, nothing that reads as a
link — also for names stored before names were held to one line of visible text."""

from __future__ import annotations

from handlers.mail import mail_text


def test_controls_format_characters_and_separators_are_dropped_or_made_spaces() -> None:
    assert mail_text("Pay\u202eroll\u200b\u2028team\n\tA") == "Payroll team A"


def test_links_are_defused() -> None:
    assert mail_text("https://evil.example/login") == "https[:]//evil[.]example/login"
