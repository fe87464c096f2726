"""Helpers shared by tests and benchmarks. Test modules and conftest files import from here, never from each other."""
