"""Money for the closed loop: Decimal amounts in cents and conversion to the base currency."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")


def cents(amount: Decimal) -> Decimal:
    """Round ``amount`` to cents, half up."""
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True, slots=True)
class UnknownCurrency:
    """The error value for an amount in a currency that has no configured rate."""

    currency: str
    base: str

    def __str__(self) -> str:
        if not self.currency:
            return (
                f"the deal has no currency (its mapped currency field is blank in every system);"
                f" closeloop does not guess {self.base}: set the deal's currency"
            )
        return f"no exchange rate from {self.currency} to {self.base}; add it to the configured rates"


@dataclass(frozen=True, slots=True)
class Rates:
    """Configured exchange rates: units of the ``base`` currency that one unit of each currency is worth."""

    base: str
    to_base: Mapping[str, Decimal] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        rates = {code.strip().upper(): rate for code, rate in self.to_base.items()}
        for code, rate in rates.items():
            if not isinstance(rate, Decimal) or not rate.is_finite() or rate <= 0:
                raise ValueError(f"exchange rate for {code} must be a positive Decimal, not {rate!r}")
        object.__setattr__(self, "base", self.base.strip().upper())
        object.__setattr__(self, "to_base", rates)

    def convert(self, amount: Decimal, currency: str) -> Decimal | UnknownCurrency:
        """Convert ``amount`` in ``currency`` to the base currency, in cents."""
        code = currency.strip().upper()
        if code == self.base:
            return cents(amount)
        rate = self.to_base.get(code)
        if rate is None:
            return UnknownCurrency(code, self.base)
        return cents(amount * rate)
