"""jopt's version, in one place: the package (``jopt.__version__``) and its build
metadata (``pyproject.toml`` reads it) both take it from here."""

__version__ = "0.1.0"
