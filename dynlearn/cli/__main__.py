"""``python -m dynlearn.cli`` (and ``torchrun -m dynlearn.cli``): the ``dynlearn`` command."""

import sys

from dynlearn.cli import main

sys.exit(main())
