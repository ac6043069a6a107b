"""Label new text with a trained classifier: the top label and its probability.

    python pipeline/predict.py "a visually stunning rumination" "a sour little movie at its core"
    python pipeline/predict.py --file reviews.txt --json      # one text a line; - reads stdin

A thin command over `pipeline.classifier.Classifier` (use that from code): the encoder,
pooling, layer and max_length come from the classifier's model.json, so predictions use exactly
the features it was trained on. Without --model, the newest classifier under ./models is used.
A text that cannot be labeled (empty, not valid Unicode) gets its own error row.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

if __name__ == "__main__" and not __package__:  # run as a file: import the package, not siblings
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from pipeline import cli
from pipeline.classifier import ENGINES, Classifier
from pipeline.data.reader import read_lines
from pipeline.probe import latest_model

LINE_ENDS = str.maketrans({c: f"\\u{ord(c):04x}" for c in "\x85\u2028\u2029"})


def predict(texts: list[str], model_dir: Path, engine: str = "auto") -> list[dict]:
    """One result per text: label and probabilities, or an error for text that cannot be labeled."""
    return Classifier.load(model_dir, engine).results(texts, progress=len(texts) >= 1000)


def json_line(result: dict) -> str:
    """`result` as one line of JSON: characters that some readers take for a line end (U+0085,
    U+2028, U+2029) are escaped, so one result stays one line."""
    return json.dumps(result, ensure_ascii=False).translate(LINE_ENDS)


def format_table(results: list[dict]) -> str:
    """label, probability and text (shortened) per row, for people."""
    width = max([9, *(len(r.get("label", "")) for r in results)])
    rows = [f"{'label':<{width}} {'prob':>6}  text"]
    for r in results:
        text = r["text"] if len(r["text"]) <= 70 else r["text"][:67] + "..."
        if "error" in r:
            rows.append(f"{'error':<{width}} {'':>6}  {text!r}: {r['error']}")
        else:
            rows.append(f"{r['label']:<{width}} {r['probability']:>6.3f}  {text}{read(r)}")
    return "\n".join(rows)


def read(result: dict) -> str:
    """What was read of a long text, for the table: nothing for a text read in one window."""
    if result.get("truncated"):
        return f"  (truncated: only its first {result['tokens']} tokens were read)"
    if result.get("windows", 1) > 1:
        return f"  ({result['tokens']} tokens, read in {result['windows']} windows)"
    return ""


def main() -> None:
    """Command line: label the texts given as arguments or in --file."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("texts", nargs="*", help="texts to label")
    parser.add_argument("--file", help="file with one text a line; - for stdin")
    parser.add_argument("--model", type=Path, help="classifier folder (default: newest in models/)")
    parser.add_argument(
        "--engine",
        choices=ENGINES,
        default="auto",
        help="onnx: ONNX Runtime (after make export), torch: the training stack; "
        "auto (default): onnx when the model folder has an export",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print JSON lines instead of a table, with every class's probability",
    )
    args = parser.parse_args()
    texts = list(args.texts) + (read_lines(args.file) if args.file else [])
    if not texts:
        parser.error("give texts to label, or --file")
    results = predict(texts, args.model or latest_model(), args.engine)
    if args.json:
        print("\n".join(json_line(r) for r in results))
    else:
        print(format_table(results))


if __name__ == "__main__":
    cli.run(main)
