"""The `sst2-probe` command that `pip install .` puts on the PATH: one entry point, a subcommand
per module command line, each module's own options and --help.

    sst2-probe predict --model models/<run> "a visually stunning rumination"
    sst2-probe serve --model models/<run> --port 8000        # pip install 'sst2-probe[serve]'
    sst2-probe export --model models/<run>                   # pip install 'sst2-probe[train]'
    sst2-probe batch-predict --model models/<run> --input texts.txt --output labels.parquet

A subcommand imports its module only when it runs, so the runtime never imports an extra it did
not ask for; one whose extra is not installed says which to install, in one line, and exits 2.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from importlib.metadata import PackageNotFoundError, version
from typing import NoReturn

from pipeline import PipelineError, cli

PROG = "sst2-probe"
# name: (module whose main() it runs, the extra it needs or None, the line --help shows)
COMMANDS = {
    "predict": ("pipeline.predict", None, "label texts, or a file of them, with a trained model"),
    "serve": ("pipeline.serving.serve", "serve", "serve a model over HTTP (a page, a JSON API)"),
    "export": ("pipeline.export", "train", "export a model's encoder to ONNX, checked vs torch"),
    "batch-predict": ("pipeline.scale.batch_predict", "scale", "label a large file into Parquet"),
}
# the top-level modules each extra brings, the first telling whether it is installed
EXTRA_MODULES = {
    "serve": (
        "fastapi",
        "fastapi_offline",
        "uvicorn",
        "starlette",
        "pydantic",
        "httptools",
        "uvloop",
    ),
    "scale": ("pyarrow", "ray"),
    "train": ("torch", "transformers", "sklearn", "onnx", "pandas", "datasets", "joblib"),
}


def missing_extra(module: str | None) -> str | None:
    """The extra that would install `module` (a dotted name), or None when no extra does."""
    top = (module or "").split(".")[0]
    return next((extra for extra, tops in EXTRA_MODULES.items() if top in tops), None)


def usage() -> str:
    """The list of subcommands, one line each; those whose extra is missing say so."""
    lines = [f"usage: {PROG} COMMAND [options]   ({PROG} COMMAND --help for its options)", ""]
    for name, (_, extra, about) in COMMANDS.items():
        missing = extra and not installed(EXTRA_MODULES[extra][0])
        lines.append(f"  {name:<14} {about}" + (f" (needs {pip(extra)})" if missing else ""))
    return "\n".join(lines)


def installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # ValueError: blocked (None in sys.modules)
        return False


def pip(extra: str) -> str:
    return f"pip install '{PROG}[{extra}]'"


def run(name: str, args: list[str]) -> NoReturn:
    """Run subcommand `name` with `args` as its module's own command line would."""
    module_name = COMMANDS[name][0]
    sys.argv = [f"{PROG} {name}", *args]  # argparse's prog: "sst2-probe predict"

    def main() -> None:
        try:
            module = importlib.import_module(module_name)
            module.main()
        except ModuleNotFoundError as err:
            needed = missing_extra(err.name)
            if needed is None:
                raise
            raise PipelineError(
                f"{PROG} {name} needs {err.name}, which is not installed: {pip(needed)}"
            ) from None

    cli.run(main)


def main(argv: list[str] | None = None) -> NoReturn:
    """Command line: dispatch `sst2-probe COMMAND ...` to COMMAND's module."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        print(usage(), file=sys.stderr)
        sys.exit(2)
    if argv[0] in ("-h", "--help"):
        print(usage())
        sys.exit(0)
    if argv[0] == "--version":
        try:
            print(f"{PROG} {version(PROG)}")
        except PackageNotFoundError:
            print(f"{PROG} (not installed)")
        sys.exit(0)
    if argv[0] not in COMMANDS:
        print(
            f"{PROG}: unknown command {argv[0]!r}; one of: {', '.join(COMMANDS)}", file=sys.stderr
        )
        sys.exit(2)
    run(argv[0], argv[1:])


if __name__ == "__main__":
    main()
