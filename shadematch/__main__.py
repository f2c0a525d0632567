"""`python -m shadematch`: the `shadematch` command, for when the console script is not on PATH."""
from runtime.cli import main

raise SystemExit(main())
