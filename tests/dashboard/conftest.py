"""Fixtures of the dashboard tests: a small store with real QC results (`qc_store`)."""

from tests.dashboard.qc_store import qc_data_dir, qc_store_template

__all__ = ["qc_data_dir", "qc_store_template"]
