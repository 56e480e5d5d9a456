"""Quality control that runs by itself: every plug-in check on every stored snapshot, results in Parquet.

`paths` says where every QC table lives (one place), `schema` what the tables hold, `results` writes
(atomic replace) and reads them, `evaluate` turns one snapshot into check and quality rows (pure),
`service` is the process that follows the store (`python -m pipeline qc`), `consumers` the hook where
trends and alarms plug into it, `references` the experts' reference runs, `history` the hot-channel
history, `progress` the rebuild's progress bar.
"""
