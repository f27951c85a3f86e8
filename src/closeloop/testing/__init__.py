"""Test support shipped with closeloop: an in-memory fake connector for sync and loop tests without a vendor."""
