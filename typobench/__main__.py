import sys

from typobench.cli import main

sys.exit(main())
