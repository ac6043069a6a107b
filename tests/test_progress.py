import io

from pipeline.progress import progress_bar


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_log_gets_plain_lines_at_most_every_ten_seconds(monkeypatch):
    clock = iter(range(0, 1000, 3))  # each look at the clock is 3 s later
    monkeypatch.setattr("tqdm.std.time", lambda: next(clock))
    log = io.StringIO()
    with progress_bar(total=30, desc="encoding", unit="sent", file=log) as bar:
        for _ in range(30):
            bar.update(1)
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue()
    assert lines[0].startswith("encoding:   0% 0/30")
    assert lines[-1].startswith("encoding: 100% 30/30")
    assert 3 <= len(lines) <= 12  # about one a 10 s of the ~90 s, not one per update


def test_a_terminal_gets_a_redrawn_bar():
    terminal = Terminal()
    with progress_bar(total=3, desc="encoding", file=terminal) as bar:
        bar.update(3)
    assert "\r" in terminal.getvalue()


def test_iterables_and_disabled_bars():
    log = io.StringIO()
    assert list(progress_bar(range(4), desc="variants", file=log)) == [0, 1, 2, 3]
    assert log.getvalue().splitlines()[-1].startswith("variants: 100% 4/4")
    quiet = io.StringIO()
    with progress_bar(total=5, disable=True, file=quiet) as bar:
        bar.update(5)
    assert quiet.getvalue() == ""
