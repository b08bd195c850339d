"""The one rich console of the CLI: the live progress line and log records share it, so logs print
above the progress line instead of through it."""
from rich.console import Console

console = Console(stderr=True)
