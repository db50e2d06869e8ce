"""`hodei-diagnose`: checks against a live deployment, a root cause, the same report."""
