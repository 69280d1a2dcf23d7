"""`python -m selfcheckout`: the same command as the installed `selfcheckout` script."""

import sys

from selfcheckout.cli import main

sys.exit(main())
