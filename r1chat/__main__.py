import sys

from r1chat.cli import main

sys.exit(main())
