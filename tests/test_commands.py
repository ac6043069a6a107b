"""`sst2-probe`, the command `pip install .` installs: subcommands dispatched to the modules'
command lines, and a one-line answer naming the pip extra when one is missing."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, run_cli

from pipeline.commands import COMMANDS, missing_extra, usage

SCRIPT = Path(sys.executable).parent / "sst2-probe"  # where pip put it, in this venv


def script(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """Run the installed `sst2-probe` (skips the test when it is not installed)."""
    if not SCRIPT.is_file():
        pytest.skip(f"{SCRIPT} is not installed: pip install -e .")
    return subprocess.run(
        [str(SCRIPT), *args], cwd=cwd, capture_output=True, text=True, timeout=300
    )


def blocked(modules: list[str], *argv: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """`sst2-probe ARGV` in a Python where `modules` cannot be imported, as if not installed."""
    code = (
        "import sys\n"
        f"for name in {modules!r}:\n"
        "    sys.modules[name] = None\n"
        "from pipeline.commands import main\n"
        f"main({list(argv)!r})\n"
    )
    return run_cli("-c", code, cwd=cwd)


def test_help_lists_every_subcommand_on_a_line():
    done = script("--help")
    assert done.returncode == 0, done.stderr
    for name in COMMANDS:
        assert any(line.split()[:1] == [name] for line in done.stdout.splitlines()), name
    assert done.stdout == usage() + "\n"


def test_a_subcommand_is_its_modules_command_line():
    done = script("predict", "--help")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: sst2-probe predict")
    assert "--engine" in done.stdout and "--model" in done.stdout


@pytest.mark.parametrize("name", ["serve", "export", "batch-predict"])
def test_each_subcommand_explains_itself(name):
    done = run_cli("-m", "pipeline.commands", name, "--help", cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"usage: sst2-probe {name}") and "--model" in done.stdout


@pytest.mark.parametrize(
    ("name", "modules", "extra"),
    [
        ("serve", ["uvicorn", "fastapi"], "serve"),
        ("batch-predict", ["pyarrow"], "scale"),
        ("export", ["onnx", "torch"], "train"),
    ],
)
def test_a_missing_extra_is_one_line_naming_it(name, modules, extra):
    done = blocked(modules, name, "--model", "models/none")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"error: sst2-probe {name} needs {modules[0]}, which is not installed: "
        f"pip install 'sst2-probe[{extra}]'"
    ]


def test_help_says_which_extra_a_subcommand_lacks():
    done = blocked(["fastapi"], "--help")
    assert done.returncode == 0
    serve = next(line for line in done.stdout.splitlines() if line.split()[:1] == ["serve"])
    assert serve.endswith("(needs pip install 'sst2-probe[serve]')")


def test_predict_imports_no_extra_and_no_training_stack():
    code = (
        "import sys\n"
        "from pipeline.commands import main\n"
        "try:\n"
        "    main(['predict', '--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = {'torch', 'transformers', 'sklearn', 'fastapi', 'ray', 'pyarrow'}\n"
        "print(sorted(heavy & {name.split('.')[0] for name in sys.modules}))\n"
    )
    done = run_cli("-c", code, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_unknown_or_no_command_exits_2():
    unknown = run_cli("-m", "pipeline.commands", "trian", cwd=ROOT)
    assert unknown.returncode == 2 and "unknown command 'trian'" in unknown.stderr
    nothing = run_cli("-m", "pipeline.commands", cwd=ROOT)
    assert nothing.returncode == 2 and "usage: sst2-probe" in nothing.stderr


def test_predict_labels_text(tiny_model, workdir):
    done = script("predict", "--model", str(tiny_model), "--json", "a good film", "", cwd=workdir)
    assert done.returncode == 0, done.stderr
    good, empty = (json.loads(line) for line in done.stdout.splitlines())
    assert good["label"] in ("negative", "positive") and "error" in empty
    missing = script("predict", "--model", str(workdir / "nowhere"), "x", cwd=workdir)
    assert missing.returncode == 2 and "Traceback" not in missing.stderr


def test_every_subcommand_names_a_module_with_a_main():
    """The table imports by name (lazily), so check here what an import would check."""
    for module, extra, about in COMMANDS.values():
        path = ROOT / (module.replace(".", "/") + ".py")
        assert "\ndef main() -> None:" in path.read_text(encoding="utf-8"), module
        assert extra in (None, "serve", "scale", "train") and len(about) < 60


def test_missing_extra_maps_top_level_modules():
    assert missing_extra("uvicorn.config") == "serve"
    assert missing_extra("ray.data") == "scale"
    assert missing_extra("sklearn") == "train"
    assert missing_extra("yaml") is None and missing_extra(None) is None


def test_pip_installs_the_script():
    from importlib.metadata import entry_points

    if not SCRIPT.is_file():
        pytest.skip(f"{SCRIPT} is not installed: pip install -e .")
    (entry,) = entry_points(group="console_scripts", name="sst2-probe")
    assert entry.value == "pipeline.commands:main"
