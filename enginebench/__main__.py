import sys

from enginebench.cli import main

sys.exit(main())
