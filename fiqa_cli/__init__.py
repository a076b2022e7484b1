"""fiqa: face image quality assessment with CR-FIQA."""

__version__ = "0.1.0"
