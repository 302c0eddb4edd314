"""newsingest: streaming news ingestion."""
__version__ = "0.1.0"
