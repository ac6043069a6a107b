"""Research on frozen vectors: the pooling/layer study and SentEval's table (make study, suite)."""
