"""``python -m zeroshot_core.cli``: the same as the ``zeroshot`` command."""

import sys

from zeroshot_core.cli.parser import main

sys.exit(main())
