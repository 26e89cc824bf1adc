import sys

from provisiond.cli import main

sys.exit(main())
