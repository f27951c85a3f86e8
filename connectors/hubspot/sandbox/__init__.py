"""The HubSpot emulator (an ASGI app) and its seeded factory."""

from .app import HubSpotSandbox
from .seeding import create_sandbox

__all__ = ["HubSpotSandbox", "create_sandbox"]
