"""Label new text with a trained classifier: the top label and its probability.

    python pipeline/predict.py "a visually stunning rumination" "a sour little movie at its core"
    python pipeline/predict.py --file reviews.txt --json      # one text a line; - reads stdin
    python pipeline/predict.py --explain "a sour little movie"   # why: each word's weight

A thin command over `pipeline.classifier.Classifier` (use that from code): the encoder,
pooling, layer and max_length come from the classifier's model.json, so predictions use exactly
the features it was trained on. Without --model, the newest classifier under ./models is used.
A text that cannot be labeled (empty, not valid Unicode) gets its own error row.

--explain says why (`Classifier.explain`): each word's signed weight in the label's log-odds.
On a terminal, each text is printed whole with its words tinted by weight (blue toward the
label, orange against it, deeper for stronger; NO_COLOR turns colour off), its five strongest
words and their weights beneath, and a legend. With --json, or into a pipe or a file, it prints
JSON lines: each result with "words", a list of {"word", "start", "end", "weight"}.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

if __name__ == "__main__" and not __package__:  # run as a file: import the package, not siblings
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from pipeline import cli, tint
from pipeline.classifier import ENGINES, Classifier
from pipeline.data.reader import read_lines
from pipeline.explain import DEFAULT_METHOD, METHODS
from pipeline.probe import latest_model

LINE_ENDS = str.maketrans({c: f"\\u{ord(c):04x}" for c in "\x85\u2028\u2029"})


def predict(
    texts: list[str], model_dir: Path, engine: str = "auto", explain: str | None = None
) -> list[dict]:
    """One result per text: label and probabilities, or an error for text that cannot be labeled;
    with `explain` (a method of `pipeline.explain`), a labeled text's row also has its words."""
    classifier = Classifier.load(model_dir, engine)
    if explain:
        return classifier.explain(texts, explain)
    return classifier.results(texts, progress=len(texts) >= 1000)


def json_line(result: dict) -> str:
    """`result` as one line of JSON: characters that some readers take for a line end (U+0085,
    U+2028, U+2029) are escaped, so one result stays one line."""
    return json.dumps(result, ensure_ascii=False).translate(LINE_ENDS)


def format_table(results: list[dict], color: bool = False) -> str:
    """label, probability and text (shortened) per row, for people. An explained row (with
    ``words``) shows its whole text, tinted by weight with `color`, and its top words beneath."""
    width = max([9, *(len(r.get("label", "")) for r in results)])
    rows = [f"{'label':<{width}} {'prob':>6}  text"]
    for r in results:
        text = r["text"] if len(r["text"]) <= 70 else r["text"][:67] + "..."
        if "error" in r:
            rows.append(f"{'error':<{width}} {'':>6}  {text!r}: {r['error']}")
        elif "words" in r:
            tinted = tint.tinted(r["text"], r["words"], color)
            rows.append(f"{r['label']:<{width}} {r['probability']:>6.3f}  {tinted}{read(r)}")
            rows.append(f"{'':<{width}} {'':>6}  {tint.strongest(r['words'])}")
        else:
            rows.append(f"{r['label']:<{width}} {r['probability']:>6.3f}  {text}{read(r)}")
    return "\n".join(rows)


def format_explained(results: list[dict], method: str, color: bool) -> str:
    """--explain on a terminal: the table of explained rows, then the legend."""
    return f"{format_table(results, color)}\n{tint.legend(method, color)}"


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
    parser.add_argument(
        "--explain",
        action="store_true",
        help="say why: each word's weight toward (+) or against (-) the label; on a terminal, "
        "the words tinted by weight (NO_COLOR: no colour), else JSON lines with the words",
    )
    parser.add_argument(
        "--method",
        choices=METHODS,
        default=DEFAULT_METHOD,
        help=f"how --explain weighs the words (default: {DEFAULT_METHOD}; docs/explain.md)",
    )
    args = parser.parse_args()
    texts = list(args.texts) + (read_lines(args.file) if args.file else [])
    if not texts:
        parser.error("give texts to label, or --file")
    method = args.method if args.explain else None
    results = predict(texts, args.model or latest_model(), args.engine, method)
    if args.json or (args.explain and not sys.stdout.isatty()):
        print("\n".join(json_line(r) for r in results))
    elif args.explain:
        print(format_explained(results, args.method, tint.wants_color()))
    else:
        print(format_table(results))


if __name__ == "__main__":
    cli.run(main)
