"""Root conftest: loads the e2e harness plugin and the step definitions.

pytest-bdd step modules must be imported into a conftest to be found (also under
xdist). The plugin does nothing unless `features/` is collected, so
`pytest tests/` is unaffected.
"""

pytest_plugins = [
    "features.steps.platform_steps",
    "features.steps.job_steps",
    "features.steps.log_steps",
]
