"""``python -m agentless_scanner``: run the scanner from an unpacked package."""

import sys

from agentless_scanner.cli import main

if __name__ == "__main__":
    sys.exit(main())
