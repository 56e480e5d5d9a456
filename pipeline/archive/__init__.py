"""Import of the original OVERWATCH receiver archive: file names, the per-file work, the Dask driver."""
