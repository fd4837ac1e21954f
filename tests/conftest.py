import os

import pytest
from hypothesis import HealthCheck, Phase, settings
from threadpoolctl import threadpool_limits

# One BLAS thread, as the training loop runs: the suite's small products gain nothing from a second
# thread and slow down many times over when the two cores are shared (benchmarks/README.md).
threadpool_limits(1)

# deadline=None: the first example of a test may include a Numba compilation.
settings.register_profile("default", deadline=None, max_examples=40,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", deadline=None, max_examples=40, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
# Mutation testing (setup.cfg [mutmut]): fewer, fixed examples, so thousands of mutant runs fit in an hour.
# No shrinking: a mutant only needs to fail, and shrinking its failure can take longer than the test.
settings.register_profile("mutation", deadline=None, max_examples=10, derandomize=True, database=None,
                          phases=[Phase.explicit, Phase.generate], suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", deadline=None, max_examples=500,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "default"))


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False, help="run tests marked slow")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow") or os.environ.get("SPHERENET_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow: run with --runslow or SPHERENET_SLOW=1")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
