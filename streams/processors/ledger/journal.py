"""The double-entry journal of one fill: which ledger accounts move, by how much, in which asset and scale.

Ledger accounts (the ``account`` field of a ``LedgerEntry``) for trading account ``A``:

    A:pos:SYM        the position in SYM        asset SYM, scale size_scale
    A:cash           A's cash                   asset = the instrument's currency, scale price_scale + size_scale
    A:fees           A's fee expense            same asset and scale as cash
    clearing:VENUE   the counterparty side of every trade on VENUE (one account per venue, any asset)

A buy of ``q`` at ``p`` (notional ``N = p x q``, fee ``F`` charged)::

    DEBIT  A:pos:SYM       q     SYM      CREDIT clearing:VENUE  q  SYM
    DEBIT  clearing:VENUE  N     USD      CREDIT A:cash          N  USD
    DEBIT  A:fees          F     USD      CREDIT A:cash          F  USD

A sell swaps DEBIT and CREDIT on the first two lines; a rebate (``F < 0``) swaps them on the fee line; a zero
fee has no fee lines. Per asset (and scale) the debits of a journal equal its credits: it sums to zero.
Amounts are positive; a DEBIT adds to an account's balance, a CREDIT subtracts.
"""

from __future__ import annotations

from typing import NamedTuple

DEBIT, CREDIT = "DEBIT", "CREDIT"


class Posting(NamedTuple):
    """One line of a journal."""

    account: str
    direction: str
    asset: str
    amount: int
    scale: int


def fill_journal(
    account: str, symbol: str, venue: str, buy: bool, qty: int, notional: int, fee: int, currency: str,
    size_scale: int, money_scale: int,
) -> list[Posting]:
    """The postings of one fill (see the module docstring)."""
    pos, cash, clearing = f"{account}:pos:{symbol}", f"{account}:cash", f"clearing:{venue}"
    gets, gives = (DEBIT, CREDIT) if buy else (CREDIT, DEBIT)
    out = [
        Posting(pos, gets, symbol, qty, size_scale),
        Posting(clearing, gives, symbol, qty, size_scale),
        Posting(clearing, gets, currency, notional, money_scale),
        Posting(cash, gives, currency, notional, money_scale),
    ]
    if fee:
        charge = fee > 0
        out.append(Posting(f"{account}:fees", DEBIT if charge else CREDIT, currency, abs(fee), money_scale))
        out.append(Posting(cash, CREDIT if charge else DEBIT, currency, abs(fee), money_scale))
    return out

