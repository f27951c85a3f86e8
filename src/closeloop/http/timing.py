"""The clocks and the sleep the HTTP layer uses, injectable so tests run on fake time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from closeloop.model import now_utc


@dataclass(frozen=True)
class Timing:
    """Wall clock (HTTP dates, token expiry), monotonic clock (pacing, backoff) and sleep."""

    now: Callable[[], datetime] = now_utc
    monotonic: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
