"""kexue.progress: a bar on a terminal, the items untouched everywhere, nothing in CI / cron."""

from __future__ import annotations

import io
import sys

from kexue.progress import on_terminal, track


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_no_terminal_or_ci_returns_the_items_themselves(monkeypatch):
    items = [1, 2, 3]
    monkeypatch.setattr(sys, "stderr", io.StringIO())          # cron / Airflow / redirected
    assert not on_terminal() and track(items, "x") is items
    monkeypatch.setattr(sys, "stderr", _Tty())
    monkeypatch.setenv("CI", "true")
    assert not on_terminal() and track(items, "x") is items
    assert sys.stderr.getvalue() == ""                          # nothing written


def test_terminal_shows_a_bar_and_yields_every_item(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    tty = _Tty()
    monkeypatch.setattr(sys, "stderr", tty)
    assert on_terminal()
    wrapped = track(iter(range(1000)), "reading kb_data", unit=" lines")
    assert wrapped is not None and not isinstance(wrapped, range)
    assert list(wrapped) == list(range(1000))
    assert "reading kb_data" in tty.getvalue()


def test_ccks_kb_reader_is_unchanged_under_a_bar(monkeypatch):
    """The same KB read with and without a bar: identical tables and counts."""
    from kexue.data.ccks.generate import default_kb_lines
    from kexue.data.ccks.reader import Rejects, read_kb
    from kexue.io.lines import Line

    lines = [Line(i + 1, t, None) for i, t in enumerate(default_kb_lines(n_entities=500))]
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    quiet = read_kb(iter(lines), Rejects())
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setattr(sys, "stderr", _Tty())
    bar = read_kb(iter(lines), Rejects())
    assert quiet.entities.equals(bar.entities) and quiet.stats.read == bar.stats.read == 500
    assert "reading kb_data" in sys.stderr.getvalue()
