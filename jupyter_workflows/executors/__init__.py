"""Executors: where task attempts run (Dask distributed, or in-process threads)."""
