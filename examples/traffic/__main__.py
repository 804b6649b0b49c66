"""`python -m examples.traffic`."""
from examples.traffic.cli import main

raise SystemExit(main())
