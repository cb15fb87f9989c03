"""The report renders, and in a real browser its table, figures and audio players load."""

import json
import shutil
import subprocess

import pytest

from tts_adapt.evaluation.plots import pareto_front
from tts_adapt.evaluation.report import write_report

from .conftest import needs_espeak

CHROMIUM = next(
    (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None
)

PROBE = """
<script>
window.addEventListener('load', async () => {
  const audios = [...document.querySelectorAll('audio')];
  await Promise.all(audios.map(a => a.readyState >= 1 ? null : new Promise(r => {
    a.addEventListener('loadedmetadata', r); a.addEventListener('error', r); a.load(); })));
  const imgs = [...document.querySelectorAll('img')];
  const out = {
    rows: document.querySelectorAll('#summary tbody tr').length,
    imgs: imgs.length, imgs_ok: imgs.filter(i => i.complete && i.naturalWidth > 0).length,
    audios: audios.length, audios_ok: audios.filter(a => a.readyState >= 1 && a.duration > 0.2).length,
  };
  const pre = document.createElement('pre'); pre.id = 'probe'; pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>
"""


def test_pareto_front():
    pts = [(0.5, 0.9), (0.8, 0.6), (0.4, 0.4), (0.7, 0.7), (0.6, 0.6)]
    assert pareto_front(pts) == [0, 3, 1]


@needs_espeak
def test_report_files(eval_dir, tmp_path):
    html_path, md_path = write_report([eval_dir], tmp_path / "r.html", n_audio=2)
    html = html_path.read_text()
    assert html.count("<audio") == 4 * 3  # 2 target + 2 held-out sentences x 3 systems
    assert html.count("data:image/png;base64,") == 2
    assert "adapted" in html and "0.5" in html and "1,000" in html
    md = md_path.read_text()
    assert "| System |" in md and "![Target vs held-out similarity](r_files/pareto.png)" in md
    assert (tmp_path / "r_files" / "pareto.png").stat().st_size > 1000
    with pytest.raises(FileNotFoundError, match="aggregates.json"):
        write_report([tmp_path / "nothing"], tmp_path / "x.html")


@needs_espeak
def test_a_note_says_what_the_run_can_show(eval_dir, tmp_path):
    """``report --note``: its paragraphs (blank-line separated, lines joined, HTML escaped) stand under
    the title, before the summary, in both files."""
    note = tmp_path / "note.md"
    note.write_text("Ten steps barely move\nthe model.\n\nA <b> is text here.\n", encoding="utf-8")
    from tts_adapt.cli import main

    assert main(["report", str(eval_dir), "--out", str(tmp_path / "r.html"), "--note", str(note)]) == 0
    html = (tmp_path / "r.html").read_text()
    about = html.split("<div id='about' class='about'>", 1)[1].split("</div>", 1)[0]
    assert about == "<p>Ten steps barely move the model.</p><p>A &lt;b&gt; is text here.</p>"
    assert html.index("id='about'") < html.index("<h2>Summary</h2>")
    md = (tmp_path / "r.md").read_text()
    assert md.startswith("# ") and "> Ten steps barely move the model.\n>\n> A <b> is text here." in md
    assert md.index("> Ten steps") < md.index("| System |")
    assert main(["report", str(eval_dir), "--out", str(tmp_path / "x.html"), "--note", "absent.md"]) == 1


@needs_espeak
@pytest.mark.skipif(CHROMIUM is None, reason="needs headless Chromium (Debian package 'chromium')")
def test_report_loads_in_headless_chromium(eval_dir, tmp_path):
    html_path, _ = write_report([eval_dir], tmp_path / "r.html", n_audio=1, markdown=False)
    probe = tmp_path / "probe.html"
    probe.write_text(html_path.read_text().replace("</body>", PROBE + "</body>"))
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--autoplay-policy=no-user-gesture-required",
        "--virtual-time-budget=15000",
        "--dump-dom",
        probe.as_uri(),
    ]
    dom = subprocess.run(cmd, capture_output=True, text=True, timeout=120).stdout
    assert 'id="probe"' in dom, "the page did not finish loading"
    result = json.loads(dom.split('<pre id="probe">', 1)[1].split("</pre>", 1)[0])
    assert result["rows"] == 3
    assert result["imgs"] == result["imgs_ok"] == 2
    assert result["audios"] == result["audios_ok"] == 2 * 3


@needs_espeak
def test_relative_out_from_another_working_directory(synthetic_corpus, tmp_path, monkeypatch):
    """``evaluate --out runs/eval`` (relative), then ``report`` run elsewhere: every synthesised clip is
    found and embedded, not only the ground truth."""
    from tts_adapt.data import load_corpus
    from tts_adapt.evaluation.protocol import EvalConfig, SystemEntry, run_evaluation
    from tts_adapt.evaluation.systems import make_system
    from tts_adapt.evaluation.testset import build_test_set

    train = load_corpus(synthetic_corpus / "train-synth")
    held = load_corpus(synthetic_corpus / "test-synth")
    speaker = sorted({u.speaker for u in train})[0]
    cases = build_test_set(train, held, n_target=2, n_heldout_per_speaker=1, seed=0, target_speaker=speaker)
    entries = [
        SystemEntry("ground_truth", "ground_truth"),
        SystemEntry("base", "base", make_system("espeak:en-us+f3:pitch=60")),
    ]
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    run_evaluation(entries, cases, "runs/eval", EvalConfig(metrics=("mcd",), n_boot=50), progress=False)
    rows = [json.loads(x) for x in (tmp_path / "work/runs/eval/utterances.jsonl").read_text().splitlines()]
    synthesised = [r["audio"] for r in rows if r["system"] == "base"]
    assert synthesised and all(a.startswith("audio/base/") for a in synthesised)
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    html_path, _ = write_report([tmp_path / "work/runs/eval"], tmp_path / "r.html", n_audio=2, markdown=False)
    # 2 target + 2 held-out sentences x 2 systems (only the 4 ground-truth clips before the fix)
    assert html_path.read_text().count("<audio") == 2 * 2 * 2


@needs_espeak
def test_report_lists_reference_and_hypothesis_of_every_clip(eval_dir, tmp_path):
    """Every transcribed row of the evaluation appears once with its text, transcript and WER; the notes
    name the recogniser and what each MOS predictor predicts."""
    ev = tmp_path / "ev"
    shutil.copytree(eval_dir, ev)
    rows = [json.loads(x) for x in (ev / "utterances.jsonl").read_text().splitlines() if x.strip()]
    for n, r in enumerate(rows):
        r.update(asr_text=f"heard clip {n}", wer=0.25)
    (ev / "utterances.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    agg = json.loads((ev / "aggregates.json").read_text())
    agg["config"]["asr_backend"] = "whisper-base"
    for s in agg["systems"].values():
        s["sets"]["target"]["wer"] = {"mean": 0.25, "low": 0.2, "high": 0.3, "n": 3}
    (ev / "aggregates.json").write_text(json.dumps(agg))
    html_path, md_path = write_report([ev], tmp_path / "r.html", n_audio=1)
    md = md_path.read_text()
    table = md[md.index("## Transcripts") :].splitlines()[4:]
    listed = [line for line in table if line.startswith("| ")]
    assert len(listed) == len(rows)
    for n, r in enumerate(rows):
        assert f"| {r['id']} | {r['text']} | heard clip {n} | 0.25 |" in md
    html = html_path.read_text()
    assert html.count("heard clip") == len(rows)
    assert "recogniser whisper-base (faster-whisper, language en, beam 5" in md
    assert "DNSMOS P.835" in md and "Distill-MOS" not in md  # only the predictors in the table


def test_retention_bars_of_many_voices_lie_down():
    """28 voices through several systems would be a strip dozens of inches wide that the page shrinks
    to nothing: past 40 bars the plot turns horizontal (taller than wide); a few voices stay upright."""
    import io

    from PIL import Image

    from tts_adapt.evaluation.plots import voice_retention_bars

    def size(n_voices: int, n_systems: int) -> tuple[int, int]:
        est = {"mean": 0.97, "low": 0.96, "high": 0.98}
        per_voice = {f"s{k}": {f"v{i:02d}": est for i in range(n_voices)} for k in range(n_systems)}
        return Image.open(io.BytesIO(voice_retention_bars(per_voice))).size

    wide, tall = size(28, 3)
    assert tall > 1.5 * wide
    wide, tall = size(4, 2)
    assert wide > tall
