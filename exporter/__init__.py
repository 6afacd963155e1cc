"""Prometheus exporter for OnePin workflow runs."""

__version__ = "0.1.0"
