import sys

from gome.cli import main

sys.exit(main())
