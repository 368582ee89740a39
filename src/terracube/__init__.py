"""terracube: a self-hostable openEO backend."""

__version__ = "0.1.0"
