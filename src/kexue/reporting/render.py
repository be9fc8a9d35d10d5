"""Render the run report: one self-contained HTML page (inline CSS, images as ``data:`` URIs, no
script, no external resource) and its markdown twin (figures as links to the PNG files the
``reporting`` pipeline saves beside it in ``report_figures/``)."""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Mapping, Sequence
from typing import Any

from markdown_it import MarkdownIt

FIGURES_DIR = "report_figures"
_MD = MarkdownIt("commonmark", {"html": False}).enable("table")

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#1d232a;line-height:1.45}
h1{margin-bottom:.2em} h2{border-bottom:2px solid #dde3ea;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.6em 0;font-size:.86em} caption{text-align:left;
font-weight:600;padding:.3em 0} th,td{border:1px solid #d0d7de;padding:.25em .5em;vertical-align:top}
th{background:#f3f5f7} td.num{text-align:right;font-variant-numeric:tabular-nums}
figure{margin:1em 0} figure img{max-width:100%;border:1px solid #eee} figcaption{font-size:.85em;
color:#555} .status{display:inline-block;border-radius:4px;padding:0 .5em;font-size:.8em;
margin-left:.6em;vertical-align:middle} .s-this-run{background:#d7f5dd} .s-earlier-run{
background:#fff1c2} .s-not-run{background:#eceff1;color:#666} code{background:#f3f5f7;
padding:0 .2em} nav ul{columns:2} .header td:first-child{font-weight:600}
"""


def demote(text: str, levels: int = 2) -> str:
    """Push markdown headings ``levels`` down (a family report's ``#`` sits under a section)."""
    return "\n".join("#" * levels + line if re.match(r"#{1,6}\s", line) else line
                     for line in text.splitlines())


def _slug(status: str) -> str:
    return "s-" + status.replace(" ", "-")


def _table_html(caption: str, columns: Sequence[str], rows: Sequence[Sequence[Any]],
                cls: str = "") -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    body = []
    for row in rows:
        cells = []
        for v in row:
            num = isinstance(v, (int, float)) and not isinstance(v, bool)
            cells.append(f'<td{" class=num" if num else ""}>'
                         f'{"" if v is None else html.escape(str(v))}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (f'<table class="{cls}"><caption>{html.escape(caption)}</caption><thead><tr>{head}'
            f"</tr></thead><tbody>{''.join(body)}</tbody></table>")


def _md_table(caption: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def cell(v: Any) -> str:
        return "" if v is None else str(v).replace("|", "\\|").replace("\n", " ")

    lines = [f"**{caption}**", "", "| " + " | ".join(cell(c) for c in columns) + " |",
             "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def header_rows(run: Mapping[str, Any]) -> list[list[str]]:
    """The header's (field, value) rows: run id, time, env, pipelines, git, parameters hash."""
    git = run.get("git") or {}
    dirty = git.get("git_dirty")
    return [["run id", str(run.get("run_id"))], ["started", str(run.get("started", ""))],
            ["env", str(run.get("env"))], ["pipelines", ", ".join(run.get("pipelines") or [])],
            ["command", " ".join(run.get("command") or [])],
            ["git commit", f"{git.get('git_commit', 'unknown')}"
                           f"{' (uncommitted changes)' if str(dirty).lower() == 'true' else ''}"],
            ["parameters sha256", str(run.get("parameters_sha256", ""))]]


def version_rows(run: Mapping[str, Any]) -> list[list[Any]]:
    """(dataset, loaded version, saved version) of every versioned dataset of the run."""
    return [[name, v.get("loaded"), v.get("saved")]
            for name, v in sorted((run.get("versions") or {}).items())]


def rejects_rows(sections: Sequence[Mapping[str, Any]]) -> list[list[Any]]:
    """One row per ingest: read, accepted, rejected, read == accepted + rejected, reasons."""
    rows = []
    for s in sections:
        c = s.get("ingest")
        if c:
            reasons = ", ".join(f"{k}: {v}" for k, v in c.get("by_reason", {}).items()) or "-"
            rows.append([s["key"], c.get("source", ""), c["read"], c["accepted"], c["rejected"],
                         "yes" if c["read"] == c["accepted"] + c["rejected"] else "NO", reasons])
    return rows


REJECT_COLUMNS = ["pipeline", "source", "read", "accepted", "rejected",
                  "read = accepted + rejected", "rejects by reason"]


def to_html(run: Mapping[str, Any], sections: Sequence[Mapping[str, Any]],
            title: str = "kexue run report") -> str:
    """The whole report as one self-contained HTML document."""
    out = [f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>{html.escape(title)}"
           f"</title><style>{_CSS}</style></head><body><header id=report-header>"
           f"<h1>{html.escape(title)}</h1>",
           _table_html("Run", ["field", "value"], header_rows(run), "header")]
    versions = version_rows(run)
    if versions:
        out.append(_table_html("Data versions (pass them to `kedro run --load-versions`)",
                               ["dataset", "loaded", "saved"], versions, "versions"))
    else:
        out.append("<p id=data-versions>Datasets are not versioned in this env (run with "
                   "<code>--env gpu</code> to version every artifact).</p>")
    out.append("</header><nav><h2>Contents</h2><ul>"
               '<li><a href="#section-rejects">Ingest funnel and rejects</a></li>')
    out += [f'<li><a href="#section-{s["key"]}">{html.escape(s["title"])}</a> '
            f'<span class="status {_slug(s["status"])}">{s["status"]}</span></li>'
            for s in sections]
    out.append("</ul></nav>")
    out.append('<section id="section-rejects" data-status="summary"><h2>Ingest funnel and '
               "rejects</h2>")
    rows = rejects_rows(sections)
    out.append(_table_html("Every ingest that ran", REJECT_COLUMNS, rows) if rows else
               "<p>No ingest has run.</p>")
    out.append("</section>")
    for s in sections:
        out.append(f'<section id="section-{s["key"]}" data-status="{s["status"]}">'
                   f'<h2>{html.escape(s["title"])}<span class="status {_slug(s["status"])}">'
                   f'{s["status"]}</span></h2>')
        if s.get("note"):
            out.append(f"<p><em>{html.escape(s['note'])}</em></p>")
        for b in s["blocks"]:
            if b["kind"] == "markdown":
                out.append(f'<div class="md">{_MD.render(demote(b["text"]))}</div>')
            elif b["kind"] == "table":
                out.append(_table_html(b["caption"], b["columns"], b["rows"]))
            else:
                data = base64.b64encode(b["png"]).decode("ascii")
                out.append(f'<figure data-name="{html.escape(b["name"])}"><img alt="'
                           f'{html.escape(b["caption"])}" src="data:image/png;base64,{data}">'
                           f"<figcaption>{html.escape(b['caption'])}</figcaption></figure>")
        out.append("</section>")
    out.append("</body></html>")
    return "\n".join(out)


def to_markdown(run: Mapping[str, Any], sections: Sequence[Mapping[str, Any]],
                title: str = "kexue run report", figures_dir: str = FIGURES_DIR) -> str:
    """The markdown twin: the same header, sections and tables; figures link to
    ``<figures_dir>/<name>.png`` (``report_figures`` beside an unversioned report)."""
    out = [f"# {title}", "", _md_table("Run", ["field", "value"], header_rows(run)), ""]
    versions = version_rows(run)
    if versions:
        out += [_md_table("Data versions", ["dataset", "loaded", "saved"], versions), ""]
    out += ["## Contents", ""] + [f"- {s['title']}: **{s['status']}**" for s in sections]
    out += ["", "## Ingest funnel and rejects", ""]
    rows = rejects_rows(sections)
    out += [_md_table("Every ingest that ran", REJECT_COLUMNS, rows) if rows
            else "No ingest has run.", ""]
    for s in sections:
        out += [f"## {s['title']} ({s['status']})", ""]
        if s.get("note"):
            out += [f"*{s['note']}*", ""]
        for b in s["blocks"]:
            if b["kind"] == "markdown":
                out += [demote(b["text"]), ""]
            elif b["kind"] == "table":
                out += [_md_table(b["caption"], b["columns"], b["rows"]), ""]
            else:
                out += [f"![{b['caption']}]({figures_dir}/{b['name']}.png)", ""]
    return "\n".join(out).rstrip() + "\n"


def figures_of(sections: Sequence[Mapping[str, Any]]) -> dict[str, bytes]:
    """``{"<name>.png": PNG bytes}`` of every figure in the report (the markdown twin's links)."""
    return {f"{b['name']}.png": b["png"] for s in sections for b in s["blocks"]
            if b["kind"] == "figure"}
