"""Root conftest: loads the step definitions of features/.

pytest-bdd step modules must be imported into a conftest to be found (also under
xdist). The harness plugin itself comes through its pytest11 entry point and acts only
when the run collects `features/` (the `hodei_e2e_features` ini option), so
`pytest tests/` is unaffected.
"""

pytest_plugins = [
    "features.steps.platform_steps",
    "features.steps.job_steps",
    "features.steps.log_steps",
    "features.steps.chaos_steps",
    "features.steps.metrics_steps",
    "features.steps.provider_steps",
]
