"""Run the site admin CLI with ``python -m edge_agent``."""

from edge_agent.cli import main

main()
