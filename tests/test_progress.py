"""The progress display: a redrawn line on a terminal, occasional plain lines otherwise."""

from __future__ import annotations

import io

from r1chat.progress import Progress, format_bytes, format_duration


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class TerminalStream(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_format_bytes_uses_decimal_units():
    assert format_bytes(999) == "999 B"
    assert format_bytes(400_000) == "400 kB"
    assert format_bytes(98_362_432) == "98.4 MB"
    assert format_bytes(1_117_320_576) == "1.12 GB"
    assert format_bytes(8_990_000_000) == "8.99 GB"
    assert format_bytes(12_500_000_000) == "12.5 GB"


def test_format_duration():
    assert format_duration(5) == "0:05"
    assert format_duration(83) == "1:23"
    assert format_duration(3723) == "1:02:03"


def test_terminal_line_shows_percent_speed_eta():
    clock, stream = FakeClock(), TerminalStream()
    progress = Progress(10_000_000, "model:Q4", stream, clock=clock)

    clock.now += 2
    progress.update(4_000_000)
    line = stream.getvalue().split("\r")[-1]

    assert line.startswith("model:Q4 [")
    assert " 40%" in line
    assert "2.00 MB/s" in line
    assert "ETA 0:03" in line
    assert len(line) <= 79


def test_terminal_line_fits_narrow_screen(monkeypatch):
    monkeypatch.setattr("r1chat.progress._terminal_columns", lambda stream: 40)
    clock, stream = FakeClock(), TerminalStream()
    progress = Progress(10_000_000, "deepseek-r1-1.5b:Q4_K_M", stream, clock=clock)

    clock.now += 1
    progress.update(5_000_000)
    progress.close()

    lines = [part.rstrip("\n") for part in stream.getvalue().split("\r") if part]
    assert all(len(line) <= 39 for line in lines)
    assert "50%" in lines[-1]
    assert stream.getvalue().endswith("\n")


def test_terminal_redraw_limited():
    clock, stream = FakeClock(), TerminalStream()
    progress = Progress(1000, "x", stream, clock=clock)

    for done in range(1, 101):
        clock.now += 0.001
        progress.update(done)

    assert stream.getvalue().count("\r") == 1


def test_plain_lines_at_ten_percent_steps():
    clock, stream = FakeClock(), io.StringIO()
    progress = Progress(1000, "file", stream, clock=clock)

    for done in range(0, 1001, 5):
        clock.now += 0.1
        progress.update(done)
    progress.close()

    lines = stream.getvalue().splitlines()
    assert len(lines) == 10
    assert lines[0].startswith("file:  10%")
    assert lines[-1].startswith("file: 100%")
    assert "\r" not in stream.getvalue()


def test_plain_short_task_writes_final_line_only():
    clock, stream = FakeClock(), io.StringIO()
    progress = Progress(1000, "hash", stream, clock=clock)

    for done in range(0, 1001, 100):
        clock.now += 0.01
        progress.update(done)
    progress.close()

    assert stream.getvalue().splitlines() == [stream.getvalue().splitlines()[-1]]
    assert "100%" in stream.getvalue()


def test_resumed_progress_measures_new_bytes_only():
    clock, stream = FakeClock(), TerminalStream()
    progress = Progress(1_000_000, "x", stream, done=900_000, clock=clock)

    clock.now += 1
    progress.update(950_000)

    assert progress.speed() == 50_000
    assert progress.eta() == 1.0
    assert progress.percent() == 95.0


def test_unknown_total_shows_amount_and_elapsed():
    clock, stream = FakeClock(), TerminalStream()
    progress = Progress(None, "x", stream, clock=clock)

    clock.now += 4
    progress.update(2_000_000)
    progress.close()

    assert "2.00 MB" in stream.getvalue()
    assert "0:04" in stream.getvalue()
    assert "%" not in stream.getvalue()


def test_count_unit_shows_done_of_total():
    clock, stream = FakeClock(), TerminalStream()
    progress = Progress(272, "quantize", stream, unit="tensors", clock=clock)

    clock.now += 1
    progress.update(136)

    assert "136/272 tensors" in stream.getvalue()
    assert "/s" not in stream.getvalue()


def test_updates_after_close_ignored():
    stream = io.StringIO()
    progress = Progress(10, "x", stream)
    progress.close()
    written = stream.getvalue()

    progress.update(5)
    progress.close()

    assert stream.getvalue() == written


def test_chinese_line_fits_forty_columns(monkeypatch):
    import io

    from r1chat import progress as progress_module

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr(progress_module, "_terminal_columns", lambda stream: 40)
    stream = Terminal()
    bar = progress_module.Progress(1_000_000, "正在加载一个很长名字的模型文件", stream, clock=lambda: 0.0)
    bar.update(500_000)
    line = stream.getvalue().split("\r")[-1]
    assert progress_module._cells(line.rstrip()) <= 39
    assert "50%" in line
