"""A small library of Grafana 11 panels, field options and layout, as plain JSON-ready dicts."""
