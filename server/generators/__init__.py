"""Generators: one module per model behind the interface in base.py; registry.py says which can run."""
