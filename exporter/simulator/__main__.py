"""``python -m exporter.simulator`` runs the ``onepin-simulator`` command."""

from .cli import main

raise SystemExit(main())
