"""closeloop's conformance kit, run against this connector from its own repository."""

from closeloop.testing.conformance import conformance_suite

from closeloop_acme.testing import TARGET

TestAcmeConformance = conformance_suite(TARGET)
