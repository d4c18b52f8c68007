"""``python -m launcher``: guarded, because spawn and forkserver children import it."""

import sys

if __name__ == "__main__":
    from launcher.cli import main

    sys.exit(main())
