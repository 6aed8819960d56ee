"""Allow `python -m sandbox`."""
from .serve import main

main()
