"""Turning stored snapshots into what people look at: runs, time slices, scaling, detector views."""
