"""Test support shipped with closeloop: the connector conformance kit and the fake clock its checks and tests use."""
