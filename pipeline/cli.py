"""What every stage's command line shares: config options and friendly errors.

User errors print one paragraph and exit 2; Ctrl-C prints one line and exits 130; neither shows a
traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from typing import NoReturn

from pipeline import PipelineError
from pipeline.config import Config, load_config

DEFAULT_CONFIG = "configs/sst2-distilbert.yaml"


def stage_parser(doc: str | None) -> argparse.ArgumentParser:
    """An argument parser with --config, --data and --set, described by the module docstring."""
    parser = argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--config", default=DEFAULT_CONFIG, help=f"YAML run config (default: {DEFAULT_CONFIG})"
    )
    parser.add_argument(
        "--data", metavar="DIR", help="local folder with train/dev files (overrides data.dir)"
    )
    parser.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="config overrides, e.g. encoder.pooling=mean train.cv=3",
    )
    return parser


def config_from_args(args: argparse.Namespace) -> Config:
    """The config named by --config with --data and --set applied."""
    config = load_config(args.config, args.set)
    if args.data:
        config.data.dir = args.data
    return config


def run(main: Callable[[], None]) -> NoReturn:
    """Run a stage's `main` with logging set up; turn user errors and Ctrl-C into clean exits."""
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    for noisy in ("httpx", "huggingface_hub", "datasets", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        main()
    except PipelineError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt as err:
        print(str(err) or "interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(0)
