"""Past one machine: the Ray Data engine, batch prediction of large files, a synthetic corpus."""
