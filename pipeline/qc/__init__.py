"""Quality control that runs by itself: every plug-in check on every stored snapshot, results in Parquet.

`paths` says where every QC table lives (one place), `schema` what the tables hold, `evaluate` turns one
snapshot into check and quality rows (pure), `service` is the process that follows the store
(`python -m pipeline qc`), `references` the experts' reference runs, `history` the hot-channel history.
"""
