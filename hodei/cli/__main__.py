"""`python -m hodei.cli ...` is the `hodei` command."""

import sys

try:
    from hodei.cli.main import main
except KeyboardInterrupt:  # Ctrl-C while the interpreter loads: no traceback
    sys.exit(130)

sys.exit(main())
