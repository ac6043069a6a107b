"""Where sentences come from: one reader for every text input, a run's splits, one labeled file as
a table, texts kept on disk."""
