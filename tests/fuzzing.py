"""How hard the fuzz suites push: 2000 examples in scripts/test, 10 000 when scripts/soak
sets OCO_FUZZ_EXAMPLES; no deadline, no example database, no health check in the way."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

FUZZ_EXAMPLES = int(os.environ.get("OCO_FUZZ_EXAMPLES", "2000"))

FUZZ = settings(
    max_examples=FUZZ_EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck)
)
