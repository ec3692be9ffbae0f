"""`python -m vigil` runs the daemon."""

from vigil.daemon import main

main()
