"""Order keys of the board: fractional indexing, as the npm ``fractional-indexing`` package
(3.x, ``generateKeyBetween``, base-62 digits) makes them, so that the server and the
browser make the same keys and each can put a card between two the other made.

A key is an *integer part* — a head letter that tells its length (``a0`` … ``az``,
``b00`` … ``bzz``, …; ``Z``/``Y``/… downwards for keys before ``a0``) — then an optional
*fraction* of base-62 digits that never ends in ``0``. Keys compare as byte strings.
The charset, length and shape are checked by the contract
(``hubbub.contracts.api.resources.Position``); the functions here assume valid keys.
"""

from __future__ import annotations

from collections.abc import Sequence

from hubbub.contracts.api.resources import MAX_POSITION_LENGTH, integer_length
from hubbub.contracts.errors import Conflict

DIGITS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
ZERO = DIGITS[0]
SMALLEST_INTEGER = "A" + ZERO * 26
# A move that leaves its card a key longer than this gives it, and the cards around it,
# fresh keys (``respace``). The browser puts a card between two others by halving the gap
# between their keys, which takes one more character every six halvings or so: a gap that
# cards are dropped into again and again (two cards swapped back and forth) would, after
# some 300 moves, need keys longer than MAX_POSITION_LENGTH, which the API refuses. A key
# between two neighbours is at most one character longer than the longer of them, so
# while a column's keys are this short there is room for the next moves.
RESPACE_AFTER = 32
# The keys ``respace`` stops at: the run it re-keys is the cards around the moved one with
# keys longer than this.
SHORT_KEY = 8
# ``respace`` re-keys at most this many cards on either side of the moved one: a move
# changes (and journals) at most 2 * RESPACE_SPAN + 1 cards, however long the run.
RESPACE_SPAN = 50


def _midpoint(a: str, b: str | None) -> str:
    """A fraction strictly between fractions ``a`` and ``b`` (``None``: the end)."""
    if b is not None and a >= b:
        raise ValueError(f"{a!r} >= {b!r}")
    if a.endswith(ZERO) or (b and b.endswith(ZERO)):
        raise ValueError("trailing zero")
    if b:
        n = 0  # the longest common prefix, ``a`` padded with zeros
        while (a[n] if n < len(a) else ZERO) == b[n]:
            n += 1
        if n > 0:
            return b[:n] + _midpoint(a[n:], b[n:])
    digit_a = DIGITS.index(a[0]) if a else 0
    digit_b = DIGITS.index(b[0]) if b is not None else len(DIGITS)
    if digit_b - digit_a > 1:
        # JavaScript's Math.round: halves round up
        return DIGITS[int(0.5 * (digit_a + digit_b) + 0.5)]
    if b and len(b) > 1:
        return b[:1]
    return DIGITS[digit_a] + _midpoint(a[1:], None)


def _integer_part(key: str) -> str:
    length = integer_length(key[0])
    if length > len(key):
        raise ValueError(f"invalid order key: {key!r}")
    return key[:length]


def _increment(x: str) -> str | None:
    head, digits = x[0], list(x[1:])
    carry = True
    for i in range(len(digits) - 1, -1, -1):
        d = DIGITS.index(digits[i]) + 1
        if d == len(DIGITS):
            digits[i] = ZERO
        else:
            digits[i] = DIGITS[d]
            carry = False
            break
    if not carry:
        return head + "".join(digits)
    if head == "Z":
        return "a" + ZERO
    if head == "z":
        return None
    h = chr(ord(head) + 1)
    if h > "a":
        digits.append(ZERO)
    else:
        digits.pop()
    return h + "".join(digits)


def _decrement(x: str) -> str | None:
    head, digits = x[0], list(x[1:])
    borrow = True
    for i in range(len(digits) - 1, -1, -1):
        d = DIGITS.index(digits[i]) - 1
        if d == -1:
            digits[i] = DIGITS[-1]
        else:
            digits[i] = DIGITS[d]
            borrow = False
            break
    if not borrow:
        return head + "".join(digits)
    if head == "a":
        return "Z" + DIGITS[-1]
    if head == "A":
        return None
    h = chr(ord(head) - 1)
    if h < "Z":
        digits.append(DIGITS[-1])
    else:
        digits.pop()
    return h + "".join(digits)


def key_between(a: str | None, b: str | None) -> str:
    """A key strictly between ``a`` and ``b`` (``None``: the start, the end) — what
    ``generateKeyBetween(a, b)`` returns for the same arguments."""
    if a is not None and b is not None and a >= b:
        raise ValueError(f"{a!r} >= {b!r}")
    if a is None:
        if b is None:
            return "a" + ZERO
        ib = _integer_part(b)
        fb = b[len(ib) :]
        if ib == SMALLEST_INTEGER:
            return ib + _midpoint("", fb)
        if ib < b:
            return ib
        below = _decrement(ib)
        if below is None:
            raise ValueError("cannot decrement any more")
        return below
    ia = _integer_part(a)
    fa = a[len(ia) :]
    if b is None:
        above = _increment(ia)
        return ia + _midpoint(fa, None) if above is None else above
    ib = _integer_part(b)
    fb = b[len(ib) :]
    if ia == ib:
        return ia + _midpoint(fa, fb)
    above = _increment(ia)
    if above is None:
        raise ValueError("cannot increment any more")
    if above < b:
        return above
    return ia + _midpoint(fa, None)


def after(last: str | None) -> str:
    """The key of a card put at the end of a column whose last key is ``last``;
    ``Conflict`` when that key would be longer than a key may be (a column that ends in a
    key made up near the largest there is: only moving that card makes room)."""
    key = key_between(last, None)
    if len(key) > MAX_POSITION_LENGTH:
        raise Conflict(
            "there is no room after the column's last card; move it, or give a position",
            reason="no_room",
            field="position",
        )
    return key


def keys_between(a: str | None, b: str | None, n: int) -> list[str]:
    """``n`` keys in order, strictly between ``a`` and ``b`` (``None``: the start, the
    end), spread so that they stay short — fractional-indexing's
    ``generateNKeysBetween(a, b, n)``."""
    if n <= 0:
        return []
    if n == 1:
        return [key_between(a, b)]
    if b is None:
        keys = [key_between(a, None)]
        while len(keys) < n:
            keys.append(key_between(keys[-1], None))
        return keys
    if a is None:
        keys = [key_between(None, b)]
        while len(keys) < n:
            keys.append(key_between(None, keys[-1]))
        return keys[::-1]
    mid = n // 2
    c = key_between(a, b)
    return [*keys_between(a, c, mid), c, *keys_between(c, b, n - mid - 1)]


def _side(keys: Sequence[str], span: int) -> tuple[int, str | None]:
    """How many of ``keys`` (a side's keys, nearest first, at most ``span + 1``) the run
    takes, and the key it stops at (``None``: the column's end). The run stops before the
    first short key, or after ``span`` cards."""
    for n, key in enumerate(keys[:span]):
        if len(key) <= SHORT_KEY:
            return n, key
    if len(keys) > span:
        return span, keys[span]
    return len(keys), None


def respace(
    below: Sequence[str], moved: str, above: Sequence[str], span: int = RESPACE_SPAN
) -> tuple[int, int, list[str]] | None:
    """Fresh keys for the run around a card with key ``moved``: ``below`` and ``above``
    are the keys of the cards before and after it in its column, nearest first, at most
    ``span + 1`` of each. The run is the moved card and its neighbours with keys longer
    than ``SHORT_KEY``, at most ``span`` on either side; its new keys are spread between
    the keys the run stops at, in the same order.

    Returns how many cards of ``below`` and of ``above`` the run takes and its new keys,
    one per card in order (``below``'s reversed, the moved card, ``above``'s); ``None``
    when the new keys would not be short (a run of more than ``span`` cards either side
    whose bounds share a long prefix, or equal bounds): then the move keeps its key.

    A run that reaches the column's end is spread below the key a create without
    ``position`` would take after the run's last card, so a create that read the column's
    last key before the re-key still lands after the run."""
    n_below, low = _side(below, span)
    n_above, high = _side(above, span)
    try:
        if high is None:
            high = key_between(above[n_above - 1] if n_above else moved, None)
        if low is not None and low >= high:
            return None
        keys = keys_between(low, high, n_below + 1 + n_above)
    except ValueError:
        return None
    if max(map(len, keys)) > RESPACE_AFTER:
        return None
    return n_below, n_above, keys
