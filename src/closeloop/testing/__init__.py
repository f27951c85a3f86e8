"""Test support shipped with closeloop: the connector conformance kit and the fake clock its checks and tests use."""

import sys

if "pytest" in sys.modules:  # under pytest: the kit's failed checks show their values, as a test file's would
    import pytest

    pytest.register_assert_rewrite("closeloop.testing.conformance")
