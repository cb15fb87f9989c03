"""The stock-voice part of the report (voice-pack models such as Kokoro): what adaptation kept.

Shown when an evaluation measured stock voices (``tts-adapt evaluate --stock-voices``): a summary table
per system (identity retention, WER, WER rise, how many voices are still nearest their own base voice
and which are not), a per-voice table, per-voice retention bars, and the same sentence in a few stock
voices through the base and every adapted system, to listen to.
"""

from __future__ import annotations

import html
import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

MAIN_COLUMNS = ("Stock retention ↑", "Stock WER ↓", "Stock WER rise ↓", "Stock voices nearest own")
NOTE = (
    "Stock voices: each chosen stock voice speaks the same sentences with the same seeds through the base "
    "and each system. Retention = cosine similarity of the speaker embeddings of a system's clip and the "
    "base's clip of the same voice, text and seed (1 = unchanged); WER rise = system WER − base WER on "
    "the same clips; a voice is nearest its own when its clips' profile through the system is nearer "
    "its own base profile than any other chosen voice's. Means with two-level bootstrap 95 % intervals "
    "(voices, then sentences)."
)


def load_stock_rows(d: Path) -> dict[str, list[dict]]:
    """``stock_voices.jsonl`` of one evaluation folder by system, audio paths resolved."""
    path = d / "stock_voices.jsonl"
    out: dict[str, list[dict]] = {}
    if not path.is_file():
        return out
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            r = json.loads(line)
            audio = r.get("audio")
            if audio and not Path(audio).is_absolute():
                r["audio"] = str(d / audio)
            out.setdefault(r["system"], []).append(r)
    return out


def has_stock(data: dict) -> bool:
    return any(s.get("stock") for s in data["systems"].values())


def _fmt(est: dict | None, digits: int = 3, signed: bool = False) -> str:
    if not est or est.get("mean") is None or not np.isfinite(est["mean"]):
        return "–"
    f = f"{{:{'+' if signed else ''}.{digits}f}}"
    return f"{f.format(est['mean'])} [{f.format(est['low'])}, {f.format(est['high'])}]"


def _kept(stock: dict) -> str:
    k = stock.get("nearest_own")
    return f"{k['kept']} / {k['of']}" if k else "–"


def _not_kept(stock: dict) -> str:
    k = stock.get("nearest_own")
    if not k:
        return "–"
    return ", ".join(f"{v} → {u}" for v, u in k["not_kept"].items()) or "none"


def main_cells(s: dict) -> list[str]:
    """The stock columns of the main summary table for one system."""
    st = s.get("stock") or {}
    if not st:
        return ["–"] * len(MAIN_COLUMNS)
    return [_fmt(st.get("retention")), _fmt(st.get("wer")), _fmt(st.get("wer_rise"), signed=True), _kept(st)]


def _lowest(low: dict | None) -> str:
    if not low:
        return "–"
    if low["voice"] is None:
        return f"all voices {low['retention']:.3f}"
    return f"{low['voice']} ({low['retention']:.3f})"


def summary_table(data: dict) -> tuple[list[str], list[list[str]]]:
    header = [
        "System",
        "Role",
        "Retention ↑",
        "WER ↓",
        "Base WER",
        "WER rise ↓",
        "Nearest own",
        "Not nearest own (→ nearest)",
        "Lowest retention",
        "Voice packs changed",
    ]
    body = []
    for label, s in data["systems"].items():
        st = s.get("stock")
        if not st:
            continue
        low = st.get("retention_min_voice")
        body.append(
            [
                label,
                s["role"],
                _fmt(st.get("retention")),
                _fmt(st.get("wer")),
                _fmt(st.get("wer_base")),
                _fmt(st.get("wer_rise"), signed=True),
                _kept(st),
                _not_kept(st),
                _lowest(low),
                ", ".join(st.get("packs_changed") or []) or ("none" if "packs_changed" in st else "–"),
            ]
        )
    return header, body


def _voices(data: dict) -> list[str]:
    voices: list[str] = []
    for s in data["systems"].values():
        voices += [v for v in (s.get("stock") or {}).get("voices", []) if v not in voices]
    return voices


def per_voice_table(data: dict) -> tuple[list[str], list[list[str]]]:
    """One row per voice: for each system its retention [interval], WER and nearest base voice."""
    systems = {k: s["stock"] for k, s in data["systems"].items() if s.get("stock")}
    header = ["Voice"]
    for label, st in systems.items():
        header += (
            [f"{label}: WER"]
            if st.get("role") == "base"
            else [
                f"{label}: retention",
                f"{label}: WER",
                f"{label}: nearest",
            ]
        )
    body = []
    for v in _voices(data):
        row = [v]
        for st in systems.values():
            pv = (st.get("per_voice") or {}).get(v, {})
            wer = "–" if pv.get("wer") is None else f"{pv['wer']:.3f}"
            if st.get("role") == "base":
                row.append(wer)
            else:
                row += [_fmt(pv.get("retention")), wer, pv.get("nearest", "–")]
        body.append(row)
    return header, body


def retention_figure(data: dict) -> bytes | None:
    from .plots import voice_retention_bars

    bars = {
        label: {
            v: pv["retention"] for v, pv in s["stock"].get("per_voice", {}).items() if pv.get("retention")
        }
        for label, s in data["systems"].items()
        if s.get("stock") and s["role"] != "base"
    }
    bars = {k: v for k, v in bars.items() if v}
    return voice_retention_bars(bars) if bars else None


def listen_voices(data: dict, n: int) -> list[str]:
    """``n`` voices spread over the retention ranking (lowest, middle, highest mean over the adapted
    systems), so the page plays the voice that changed most beside one that changed least."""
    voices = _voices(data)
    score: dict[str, list[float]] = {v: [] for v in voices}
    for s in data["systems"].values():
        for v, pv in ((s.get("stock") or {}).get("per_voice") or {}).items():
            if pv.get("retention") and v in score:
                score[v].append(pv["retention"]["mean"])
    ranked = sorted(voices, key=lambda v: (np.mean(score[v]) if score[v] else 1.0, voices.index(v)))
    if n <= 0 or not ranked:
        return []
    picks = np.unique(np.round(np.linspace(0, len(ranked) - 1, min(n, len(ranked)))).astype(int))
    return [ranked[i] for i in picks]


def listen_rows(data: dict, n: int) -> list[tuple[str, str, dict[str, str]]]:
    """``(voice, text, {system: audio})`` for the first sentence of each listened voice."""
    rows = data.get("stock_rows") or {}
    out = []
    for v in listen_voices(data, n):
        audio: dict[str, str] = {}
        text = ""
        for label in data["systems"]:
            clip = next((r for r in rows.get(label, []) if r["voice"] == v and r["index"] == 0), None)
            if clip and clip.get("audio") and os.path.exists(clip["audio"]):
                audio[label] = clip["audio"]
                text = clip["text"]
        if audio:
            out.append((v, text, audio))
    return out


def render_html(data: dict, n_audio: int, wav_uri: Callable[[str], str]) -> str:
    import base64

    e = html.escape
    parts = ["<h2>Stock voices</h2>"]
    header, body = summary_table(data)
    parts.append("<div class='scroll'><table id='stock_summary'><thead><tr>")
    parts.append("".join(f"<th>{e(h)}</th>" for h in header) + "</tr></thead><tbody>")
    for row in body:
        parts.append(f"<tr class='{e(row[1])}'>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>")
    parts.append(f"</tbody></table></div><p class='note'>{e(NOTE)}</p>")
    fig = retention_figure(data)
    if fig:
        b64 = base64.b64encode(fig).decode("ascii")
        title = "Per-voice identity retention"
        parts.append(
            f"<h3>{title}</h3><img id='stock_retention' alt='{title}' src='data:image/png;base64,{b64}'>"
        )
    header, body = per_voice_table(data)
    parts.append("<h3>Per voice</h3><div class='scroll'><table id='stock_voices'><thead><tr>")
    parts.append("".join(f"<th>{e(h)}</th>" for h in header) + "</tr></thead><tbody>")
    parts += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in body]
    parts.append("</tbody></table></div>")
    listen = listen_rows(data, n_audio)
    if listen:
        labels = [k for k, s in data["systems"].items() if s.get("stock")]
        parts.append("<h3>Listen: stock voices, base and adapted</h3><div class='scroll'>")
        parts.append("<table class='audio' id='stock_listen'><thead><tr><th>Voice</th><th>Text</th>")
        parts.append("".join(f"<th>{e(lb)}</th>" for lb in labels) + "</tr></thead><tbody>")
        for voice, text, audio in listen:
            parts.append(f"<tr><td>{e(voice)}</td><td>{e(text)}</td>")
            for lb in labels:
                parts.append(
                    f"<td><audio controls preload='metadata' src='{wav_uri(audio[lb])}'></audio></td>"
                    if lb in audio
                    else "<td>–</td>"
                )
            parts.append("</tr>")
        parts.append("</tbody></table></div>")
    return "".join(parts)


def render_markdown(data: dict, n_audio: int, files_dir: Path, md_dir: Path) -> list[str]:
    from ..utils.io import atomic_path

    def table(header: list[str], body: list[list[str]]) -> list[str]:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        return lines + ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in body]

    lines = ["## Stock voices", ""]
    lines += table(*summary_table(data)) + ["", NOTE, ""]
    fig = retention_figure(data)
    if fig:
        png = files_dir / "stock_retention.png"
        with atomic_path(png, suffix=".png") as tmp:
            tmp.write_bytes(fig)
        lines += [
            "### Per-voice identity retention",
            "",
            f"![Per-voice identity retention]({os.path.relpath(png, md_dir)})",
            "",
        ]
    lines += ["### Per voice", ""] + table(*per_voice_table(data)) + [""]
    listen = listen_rows(data, n_audio)
    if listen:
        lines += ["### Listen: stock voices, base and adapted", ""]
        for voice, text, audio in listen:
            links = ", ".join(f"[{lb}]({os.path.relpath(p, md_dir)})" for lb, p in audio.items())
            lines.append(f'- *{voice}*: "{text}": {links}')
        lines.append("")
    return lines
