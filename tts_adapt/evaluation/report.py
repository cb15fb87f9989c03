"""Comparison report from one or more evaluation folders: a self-contained HTML page and Markdown.

The HTML embeds everything (figures as PNG data URIs, audio as WAV data URIs), so the single file can
be mailed or archived. The Markdown version links to PNG files and the evaluation's own WAVs, written
beside it in ``<name>_files/``.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .plots import lambda_curves_plot, lambda_pareto_plot, pareto_plot, speaker_bars
from .report_stock import has_stock
from .report_stock import render_html as stock_html
from .report_stock import render_markdown as stock_markdown

# (column title, set, metric); a column is shown when at least one system has a value for it
COLUMNS = [
    ("Target sim ↑", "target", "sim"),
    ("Target WER ↓", "target", "wer"),
    ("Target PER ↓", "target", "per"),
    ("Target MCD ↓", "target", "mcd"),
    ("Held-out sim ↑", "heldout", "sim"),
    ("Held-out WER ↓", "heldout", "wer"),
    ("Held-out PER ↓", "heldout", "per"),
    ("DNSMOS ↑", "target", "dnsmos"),
    ("Distill-MOS ↑", "target", "distillmos"),
]
AUDIO_SR = 16000
FIGURES = (
    ("pareto", "Target vs held-out similarity"),
    ("pareto_lambda", "Target vs held-out similarity over λ (one curve per method)"),
    ("lambda_curves", "Per-method curves over λ"),
    ("per_speaker", "Per-speaker similarity"),
)


def load_evaluations(dirs: Sequence[str | os.PathLike]) -> dict[str, Any]:
    """Merge the systems of several evaluation folders; later duplicates of a name get a folder prefix.

    A base or ground-truth row that appears in several folders with the same name is kept once.
    """
    from .report_stock import load_stock_rows

    systems: dict[str, dict] = {}
    rows: dict[str, list[dict]] = {}
    stock_rows: dict[str, list[dict]] = {}
    cases: list[dict] = []
    configs: list[dict] = []
    for d in dirs:
        d = Path(d)
        agg_path = d / "aggregates.json"
        if not agg_path.is_file():
            raise FileNotFoundError(f"{agg_path} not found: run `tts-adapt evaluate --out {d}` first")
        agg = json.loads(agg_path.read_text(encoding="utf-8"))
        configs.append(agg.get("config") or {})
        drows: dict[str, list[dict]] = {}
        for line in (
            (d / "utterances.jsonl").read_text(encoding="utf-8").splitlines()
            if (d / "utterances.jsonl").exists()
            else []
        ):
            if line.strip():
                r = json.loads(line)
                drows.setdefault(r["system"], []).append(r)
        if (d / "test_set.jsonl").exists() and not cases:
            cases = [
                json.loads(x)
                for x in (d / "test_set.jsonl").read_text(encoding="utf-8").splitlines()
                if x.strip()
            ]
        dstock = load_stock_rows(d)
        for name, s in agg["systems"].items():
            label = name
            if label in systems:
                if s["role"] in ("base", "ground_truth") and systems[label]["role"] == s["role"]:
                    continue
                label = f"{d.name}/{name}"
            systems[label] = {**s, "dir": str(d), "name": name}
            rows[label] = [{**r, "audio": _resolve(d, r.get("audio"))} for r in drows.get(name, [])]
            if name in dstock:
                stock_rows[label] = dstock[name]
    if not systems:
        raise ValueError("no systems found in the given evaluation folders")
    return {"systems": systems, "rows": rows, "stock_rows": stock_rows, "cases": cases, "configs": configs}


def _resolve(d: Path, p: str | None) -> str | None:
    if p is None:
        return None
    q = Path(p)
    return str(q if q.is_absolute() else d / q)


def _fmt(est: dict | None, digits: int = 3) -> str:
    if not est or est.get("mean") is None or not np.isfinite(est["mean"]):
        return "–"
    return f"{est['mean']:.{digits}f} [{est['low']:.{digits}f}, {est['high']:.{digits}f}]"


def _info(s: dict, key: str) -> str:
    v = (s.get("info") or {}).get(key)
    if v is None:
        return "–"
    if key == "trainable_params" and isinstance(v, (int, float)):
        return f"{int(v):,}"
    return str(v)


def table_rows(systems: dict[str, dict]) -> tuple[list[str], list[list[str]]]:
    from .report_stock import MAIN_COLUMNS, main_cells

    cols = [c for c in COLUMNS if any(c[2] in s["sets"].get(c[1], {}) for s in systems.values())]
    heldout = any("heldout" in s["sets"] for s in systems.values())
    stock = any(s.get("stock") for s in systems.values())
    header = (
        ["System", "Role", "Method", "λ", "Trainable params"]
        + [c[0] for c in cols]
        + (["Retention (held-out sim)", "Retention, speaker-level interval"] if heldout else [])
        + (list(MAIN_COLUMNS) if stock else [])
    )
    body = []
    for label, s in systems.items():
        row = [label, s["role"], _info(s, "method"), _info(s, "lambda"), _info(s, "trainable_params")]
        row += [_fmt(s["sets"].get(st, {}).get(m)) for _, st, m in cols]
        if heldout:
            adapted = s["role"] == "adapted"
            row.append(_fmt((s.get("retention") or {}).get("sim")) if adapted else "–")
            row.append(_fmt((s.get("retention_speaker") or {}).get("sim")) if adapted else "–")
        if stock:
            row += main_cells(s)
        body.append(row)
    return header, body


def scoring_notes(data: dict) -> list[str]:
    """One line per evaluator shown in the table: the recogniser and its decoding, and what each MOS
    predictor was trained to predict."""
    from .asr import FASTER_WHISPER_DECODE
    from .quality import MOS_PREDICTS

    shown = {m for _, st, m in COLUMNS if any(m in s["sets"].get(st, {}) for s in data["systems"].values())}
    if any((s.get("stock") or {}).get("wer") for s in data["systems"].values()):
        shown.add("wer")
    notes = []
    if shown & {"wer"}:
        backends = sorted(
            {str(c.get("asr_backend")) for c in data.get("configs", []) if c.get("asr_backend")}
        )
        text = f"WER: recogniser {', '.join(backends) or 'unknown'}"
        if any(b.startswith("whisper-") or b == "faster-whisper" for b in backends):
            d = FASTER_WHISPER_DECODE
            text += (
                f" (faster-whisper, language {d['language']}, beam {d['beam_size']}, temperature "
                f"{d['temperature']}, int8 on CPU)"
            )
        notes.append(text + "; corpus rate (word edits / reference words) after English text normalisation.")
    for m in ("dnsmos", "distillmos"):
        if m in shown:
            notes.append(MOS_PREDICTS[m] + ".")
    return notes


def transcript_rows(data: dict) -> list[dict]:
    """Every clip a recogniser transcribed: system, set, speaker, id, reference, hypothesis, WER."""
    out = []
    for label, rows in data["rows"].items():
        for r in rows:
            if r.get("asr_text") is None:
                continue
            out.append(
                {
                    "system": label,
                    "set": r.get("set", ""),
                    "speaker": r.get("speaker", ""),
                    "id": r.get("id", ""),
                    "reference": r.get("text", ""),
                    "hypothesis": r["asr_text"],
                    "wer": r.get("wer"),
                }
            )
    return out


def _wer_text(v: float | None) -> str:
    return "–" if v is None else f"{v:.2f}"


def _wav_data_uri(path: str) -> str:
    import soundfile as sf

    from .audio_io import load_wave

    buf = io.BytesIO()
    sf.write(buf, np.clip(load_wave(path, AUDIO_SR), -1, 1), AUDIO_SR, subtype="PCM_16", format="WAV")
    return "data:audio/wav;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _samples(data: dict, n_per_set: int) -> list[tuple[dict, dict[str, str]]]:
    """The first ``n_per_set`` cases of each set that every system has audio for."""
    out = []
    for set_name in ("target", "heldout"):
        picked = 0
        for c in data["cases"]:
            if c["set"] != set_name or picked >= n_per_set:
                continue
            audio = {}
            for label, rows in data["rows"].items():
                r = next((r for r in rows if r["set"] == set_name and r["id"] == c["id"]), None)
                if r and r.get("audio") and os.path.exists(r["audio"]):
                    audio[label] = r["audio"]
            if audio:
                out.append((c, audio))
                picked += 1
    return out


def _figures(data: dict) -> dict[str, bytes]:
    systems = data["systems"]
    points = [
        {
            "label": k,
            "role": s["role"],
            "target": s["sets"].get("target", {}).get("sim"),
            "heldout": s["sets"].get("heldout", {}).get("sim"),
        }
        for k, s in systems.items()
    ]
    figs = {}
    if any(p["target"] and p["heldout"] for p in points):
        figs["pareto"] = pareto_plot(points)
    per_spk: dict[str, dict[str, float]] = {}
    for k, s in systems.items():
        for set_name in ("target", "heldout"):
            for spk, vals in (s.get("per_speaker") or {}).get(set_name, {}).items():
                if "sim" in vals:
                    per_spk.setdefault(k, {})[f"{spk} ({set_name})" if set_name == "target" else spk] = vals[
                        "sim"
                    ]
    if per_spk:
        figs["per_speaker"] = speaker_bars(per_spk)
    figs.update(_lambda_figures(systems))
    return figs


def _lambda_group(s: dict) -> str | None:
    """Adapted systems that differ only in λ share a group: method and curvature file."""
    info = s.get("info") or {}
    if s["role"] != "adapted" or info.get("lambda") is None or isinstance(info["lambda"], dict):
        return None
    curv = info.get("curvature")
    return f"{info.get('method', '?')} ({Path(str(curv)).stem})" if curv else str(info.get("method", "?"))


def _lambda_figures(systems: dict[str, dict]) -> dict[str, bytes]:
    """Over λ: target vs held-out similarity (one curve per method) and each similarity against λ,
    when some method was run with at least two λ values."""
    groups: dict[str, list[tuple[float, float, float]]] = {}
    singles: dict[str, tuple[float, float]] = {}
    base = None
    for label, s in systems.items():
        t = s["sets"].get("target", {}).get("sim")
        h = s["sets"].get("heldout", {}).get("sim")
        if not t or not h:
            continue
        group = _lambda_group(s)
        if group is not None:
            groups.setdefault(group, []).append((h["mean"], t["mean"], float(s["info"]["lambda"])))
        elif s["role"] == "base":
            base = (h["mean"], t["mean"])
        elif s["role"] == "adapted":
            singles[label] = (h["mean"], t["mean"])
    if not any(len({p[2] for p in pts}) > 1 for pts in groups.values()):
        return {}
    series = {
        g: [(lam, {"target_sim": t, "heldout_sim": h}) for h, t, lam in pts] for g, pts in groups.items()
    }
    refs = {"base": {"target_sim": base[1], "heldout_sim": base[0]}} if base else None
    return {
        "pareto_lambda": lambda_pareto_plot(groups, singles, base),
        "lambda_curves": lambda_curves_plot(
            series, [("target_sim", "target similarity ↑"), ("heldout_sim", "held-out similarity ↑")], refs
        ),
    }


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em;color:#222;max-width:1400px}
table{border-collapse:collapse;font-size:13px;margin:1em 0}
th,td{border:1px solid #ccc;padding:4px 8px;text-align:right;white-space:nowrap}
th{background:#f0f0f0}td:first-child,th:first-child{text-align:left}
#summary th{white-space:normal;max-width:8em;vertical-align:bottom}
.ci{display:block;color:#666;font-size:11px}
tr.ground_truth td{background:#fffbe6}tr.base td{background:#f3f7ff}
.audio td{text-align:left;vertical-align:top}.audio td:nth-child(3){white-space:normal;min-width:220px}
audio{width:220px}.scroll{overflow-x:auto}img{max-width:100%}
.note{color:#666;font-size:12px}
.about{background:#f7f7f2;border-left:4px solid #b8b08a;padding:.2em 1em;max-width:60em}
"""


def note_paragraphs(note: str | None) -> list[str]:
    """A report's note (``report --note``): paragraphs separated by blank lines, lines joined."""
    if not note:
        return []
    return [" ".join(p.split()) for p in note.strip().split("\n\n") if p.strip()]


def _cell_html(text: str) -> str:
    """A summary cell: an estimate's interval on its own line under the mean, so a column is as wide as
    its interval rather than mean and interval side by side (the table then fits a 1400 px window)."""
    mean, sep, interval = text.partition(" [")
    if not sep:
        return html.escape(text)
    return f"{html.escape(mean)}<span class='ci'>[{html.escape(interval)}</span>"


def render_html(data: dict, title: str, n_audio: int = 3, note: str | None = None) -> str:
    header, body = table_rows(data["systems"])
    figs = _figures(data)
    e = html.escape
    parts = [
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{e(title)}</title>",
        f"<style>{CSS}</style></head><body><h1>{e(title)}</h1>",
    ]
    if note:
        paragraphs = "".join(f"<p>{e(t)}</p>" for t in note_paragraphs(note))
        parts.append(f"<div id='about' class='about'>{paragraphs}</div>")
    parts += [
        "<h2>Summary</h2><div class='scroll'><table id='summary'><thead><tr>",
        "".join(f"<th>{e(h)}</th>" for h in header),
        "</tr></thead><tbody>",
    ]
    for label, row in zip(data["systems"], body, strict=True):
        role = data["systems"][label]["role"]
        parts.append(f"<tr class='{e(role)}'>" + "".join(f"<td>{_cell_html(c)}</td>" for c in row) + "</tr>")
    parts.append(
        "</tbody></table></div><p class='note'>Means with bootstrap 95 % intervals. sim: cosine similarity "
        "of speaker embeddings to the speaker's held-out recordings. Retention = adapted / base on "
        "held-out speakers (paired bootstrap). The ground-truth row is the ceiling.</p>"
    )
    parts += [f"<p class='note'>{e(n)}</p>" for n in scoring_notes(data)]
    if has_stock(data):
        parts.append(stock_html(data, n_audio, _wav_data_uri))
    for key, heading in FIGURES:
        if key in figs:
            b64 = base64.b64encode(figs[key]).decode("ascii")
            parts.append(
                f"<h2>{heading}</h2><img id='{key}' alt='{e(heading)}' src='data:image/png;base64,{b64}'>"
            )
    samples = _samples(data, n_audio)
    if samples:
        labels = list(data["systems"])
        parts.append(
            "<h2>Listen</h2><div class='scroll'><table class='audio'><thead><tr>"
            "<th>Set</th><th>Speaker</th><th>Text</th>"
        )
        parts.append("".join(f"<th>{e(lb)}</th>" for lb in labels) + "</tr></thead><tbody>")
        for c, audio in samples:
            parts.append(f"<tr><td>{e(c['set'])}</td><td>{e(c['speaker'])}</td><td>{e(c['text'])}</td>")
            for lb in labels:
                if lb in audio:
                    parts.append(
                        "<td><audio controls preload='metadata' "
                        f"src='{_wav_data_uri(audio[lb])}'></audio></td>"
                    )
                else:
                    parts.append("<td>–</td>")
            parts.append("</tr>")
        parts.append("</tbody></table></div>")
    transcripts = transcript_rows(data)
    if transcripts:
        parts.append(
            f"<h2>Transcripts</h2><details id='transcripts'><summary>reference and recognised text of "
            f"all {len(transcripts)} clips</summary><div class='scroll'><table class='audio'><thead><tr>"
            "<th>System</th><th>Set</th><th>Speaker</th><th>Id</th><th>Reference</th><th>Hypothesis</th>"
            "<th>WER</th></tr></thead><tbody>"
        )
        for t in transcripts:
            cells = [t["system"], t["set"], t["speaker"], t["id"], t["reference"], t["hypothesis"]]
            parts.append("<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in cells))
            parts.append(f"<td>{_wer_text(t['wer'])}</td></tr>")
        parts.append("</tbody></table></div></details>")
    parts.append("</body></html>\n")
    return "".join(parts)


def render_markdown(
    data: dict, title: str, files_dir: Path, md_dir: Path, n_audio: int = 3, note: str | None = None
) -> str:
    header, body = table_rows(data["systems"])
    figs = _figures(data)
    from ..utils.io import atomic_path

    lines = [f"# {title}", ""]
    for paragraph in note_paragraphs(note):
        lines += [f"> {paragraph}", ">"]
    if note:
        lines[-1] = ""
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in body]
    lines += ["", "Means with bootstrap 95 % intervals; retention = adapted / base on held-out speakers.", ""]
    lines += [f"- {n}" for n in scoring_notes(data)] + ([""] if scoring_notes(data) else [])
    if has_stock(data):
        lines += stock_markdown(data, n_audio, files_dir, md_dir)
    for key, heading in FIGURES:
        if key in figs:
            png = files_dir / f"{key}.png"
            with atomic_path(png, suffix=".png") as tmp:
                tmp.write_bytes(figs[key])
            lines += [f"## {heading}", "", f"![{heading}]({os.path.relpath(png, md_dir)})", ""]
    samples = _samples(data, n_audio)
    if samples:
        lines += ["## Listen", ""]
        for c, audio in samples:
            links = ", ".join(f"[{lb}]({os.path.relpath(p, md_dir)})" for lb, p in audio.items())
            lines.append(f'- *{c["set"]}*, speaker {c["speaker"]}: "{c["text"]}": {links}')
        lines.append("")
    transcripts = transcript_rows(data)
    if transcripts:
        lines += [
            "## Transcripts",
            "",
            "| System | Set | Speaker | Id | Reference | Hypothesis | WER |",
            "|---|---|---|---|---|---|---|",
        ]
        for t in transcripts:
            cells = [t["system"], t["set"], t["speaker"], t["id"], t["reference"], t["hypothesis"]]
            lines.append(
                "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + f" | {_wer_text(t['wer'])} |"
            )
        lines.append("")
    return "\n".join(lines)


def write_report(
    eval_dirs: Sequence[str | os.PathLike],
    out_html: str | os.PathLike,
    title: str = "Speaker adaptation: similarity and forgetting",
    n_audio: int = 3,
    markdown: bool = True,
    note: str | None = None,
) -> tuple[Path, Path | None]:
    """Write ``out_html`` (self-contained) and, unless ``markdown=False``, ``out_html`` with ``.md``;
    ``note`` (paragraphs separated by blank lines) is shown under the title: what the run can show."""
    from ..utils.io import write_text

    data = load_evaluations(eval_dirs)
    out_html = Path(out_html)
    write_text(out_html, render_html(data, title, n_audio, note))
    written = [out_html]
    md_path = None
    if markdown:
        md_path = out_html.with_suffix(".md")
        files = out_html.parent / f"{out_html.stem}_files"
        write_text(md_path, render_markdown(data, title, files, md_path.parent, n_audio, note))
        written += [md_path, *files.glob("*.png")]
    umask = os.umask(0)
    os.umask(umask)
    for p in written:  # a report is for sharing: ordinary file permissions, not the temp file's 0600
        os.chmod(p, 0o666 & ~umask)
    return out_html, md_path
