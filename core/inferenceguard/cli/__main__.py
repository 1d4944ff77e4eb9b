"""``python -m inferenceguard.cli VERB ...`` (e.g. under ``accelerate launch``)."""

from . import main

raise SystemExit(main())
