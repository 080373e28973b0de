"""Open3DForge server: turns concept images or meshes into game-ready assets."""

__version__ = "0.1.0"
