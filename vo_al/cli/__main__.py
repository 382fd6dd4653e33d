"""`python -m vo_al.cli`: the same as the `vo-al` command."""

import sys

from vo_al.cli.commands import main

sys.exit(main())
