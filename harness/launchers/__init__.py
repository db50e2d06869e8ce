"""Ways to get a Hodei deployment to test: local processes, containers, or a live one."""
