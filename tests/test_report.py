from pipeline.config import load_config
from pipeline.evaluate import evaluate
from pipeline.features import build_features
from pipeline.report import run_page, runs_page
from pipeline.train import train


def test_run_page_links_every_artifact_and_runs_page_lists_runs(tiny_config, workdir):
    config = load_config(tiny_config)
    build_features(config, progress=False)
    train(config)
    evaluate(config)
    page = run_page("tiny").read_text()
    for name in (
        "metrics.json",
        "report.md",
        "confusion_matrix.png",
        "roc_curve.png",
        "reliability.png",
        "accuracy_by_length.png",
        "wrong_explained.png",
        "model.json",
        "meta.json",
    ):
        assert f"[{name}](" in page, name
    assert "../../models/tiny/model.json" in page
    assert "chosen by 2-fold CV" in page and "Most confidently wrong" in page
    runs = runs_page().read_text()
    assert "[tiny](tiny/index.md)" in runs
