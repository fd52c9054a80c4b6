"""sparkctl: provision, verify and run clusters of NVIDIA DGX Spark machines."""

__version__ = "0.1.0"
