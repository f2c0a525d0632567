"""Entry script of the standalone executable: the same `shadematch` CLI as `runtime.cli:main`."""
import sys

from runtime.cli import main

if __name__ == "__main__":
    sys.exit(main())
