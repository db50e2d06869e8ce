"""`python -m hodei.cli ...` is the `hodei` command."""

import sys

from hodei.cli.main import main

sys.exit(main())
