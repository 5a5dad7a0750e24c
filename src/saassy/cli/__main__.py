"""`python -m saassy.cli`, the same as the `saassy` console script."""

from saassy.cli import main

main()
