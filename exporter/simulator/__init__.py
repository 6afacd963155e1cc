"""A simulator of the OnePin REST API, for demos, tests and benchmarks."""
