"""Where sentences come from: a run's splits, one labeled file as a table, texts kept on disk."""
