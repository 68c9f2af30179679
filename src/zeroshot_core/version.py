"""The package version (a leaf module: any floor may import it)."""

__version__ = "0.1.0"
