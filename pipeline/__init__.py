"""sst2-probe: SST-2 sentiment with a frozen transformer encoder and a logistic regression.

Stages (each a module, each runnable as ``python -m pipeline.<stage>``):
features -> train -> evaluate, and predict for new text.
"""


class PipelineError(Exception):
    """A problem the user can fix (bad config, bad data, missing artifact).

    The command-line entry points print its message without a traceback and exit with code 2.
    """
