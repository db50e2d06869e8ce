"""Domain rules: states, transitions and validation. No I/O is imported here."""
