"""Kokoro-82M in our float modules against the int8 onnxruntime graph it was converted from.

Both get the same tokens and voice-pack row. Per utterance: total frames and the share of tokens with
identical durations (the graph's rounded durations are read from inside it), Whisper base transcripts
of both and their WER, Resemblyzer similarity between the two waveforms, and MCD (DTW) between them.
Differences are expected: the graph also quantises activations at run time (dynamic int8). Usage:

    python benchmarks/kokoro_parity.py [--voices af_heart,am_adam,bf_emma,bm_george] [--out parity.md]

Writes a markdown table (and ``--json``); the table in docs/kokoro.md was made with this command.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

SENTENCES = (
    "The quick brown fox jumps over the lazy dog.",
    "Please call Stella and ask her to bring these things with her from the store.",
    "I would like a cup of tea with milk, and a slice of lemon cake, please.",
)
DURATIONS = "/encoder/Clip_output_0"  # the graph's rounded, clamped token durations


def int8_session(threads: int):
    import onnx
    import onnxruntime as ort

    from tts_adapt.models.kokoro import int8_onnx_path

    graph = onnx.load(str(int8_onnx_path()))
    graph.graph.output.append(onnx.helper.make_tensor_value_info(DURATIONS, onnx.TensorProto.FLOAT, None))
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(graph.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--voices", default="af_heart,am_adam,bf_emma,bm_george")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", help="write the markdown table here")
    ap.add_argument("--json", help="write the rows as JSON here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from tts_adapt.evaluation.asr import get_transcriber
    from tts_adapt.evaluation.mcd import mcd_dtw
    from tts_adapt.evaluation.similarity import ResemblyzerEncoder
    from tts_adapt.evaluation.text_norm import wer
    from tts_adapt.models.kokoro import kokoro_paths
    from tts_adapt.models.styletts2 import load_official
    from tts_adapt.models.styletts2.frontend import TextFrontend
    from tts_adapt.models.styletts2.inference import infer_tokens, voice_pack_for

    model = load_official(*kokoro_paths()).eval()
    frontend = TextFrontend.for_model(model)
    session = int8_session(args.threads)
    asr = get_transcriber("whisper-base", threads=args.threads)
    encoder = ResemblyzerEncoder()
    rows = []
    for voice in args.voices.split(","):
        pack = voice_pack_for(model, voice)
        for text in SENTENCES:
            ids = frontend.encode(frontend.phonemize(text))
            ref_s = pack.style_for(frontend.n_phoneme_tokens(ids))
            torch.manual_seed(0)
            with torch.no_grad():
                ours = infer_tokens(model, torch.tensor([ids]), ref_s)
            feed = {
                "tokens": np.array([ids], np.int64),
                "style": ref_s.numpy(),
                "speed": np.ones(1, np.float32),
            }
            t0 = time.perf_counter()
            theirs, theirs_dur = session.run(None, feed)
            a, b = ours.wave.float().numpy(), np.asarray(theirs, np.float32).ravel()
            dur_a, dur_b = ours.pred_dur.long().numpy(), np.asarray(theirs_dur).ravel().astype(np.int64)
            hyp_a, hyp_b = asr.transcribe([(a, 24000), (b, 24000)])
            rows.append(
                {
                    "voice": voice,
                    "text": text,
                    "frames_ours": int(dur_a.sum()),
                    "frames_int8": int(dur_b.sum()),
                    "same_durations": float(np.mean(dur_a == dur_b)),
                    "asr_ours": hyp_a,
                    "asr_int8": hyp_b,
                    "wer_ours": wer(text, hyp_a),
                    "wer_int8": wer(text, hyp_b),
                    "similarity": encoder.similarity((a, 24000), (b, 24000)),
                    "mcd": mcd_dtw((b, 24000), (a, 24000)),
                    "int8_seconds": time.perf_counter() - t0,
                }
            )
            print(json.dumps(rows[-1], ensure_ascii=False))
    lines = [
        "| voice | sentence | frames ours / int8 | tokens with equal durations | WER ours / int8 | "
        "similarity ours-int8 | MCD (dB) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['voice']} | {r['text'][:32]}… | {r['frames_ours']} / {r['frames_int8']} | "
            f"{100 * r['same_durations']:.0f} % | {r['wer_ours']:.2f} / {r['wer_int8']:.2f} | "
            f"{r['similarity']:.3f} | {r['mcd']:.2f} |"
        )
    mean = {
        k: float(np.mean([r[k] for r in rows]))
        for k in ("same_durations", "wer_ours", "wer_int8", "similarity", "mcd")
    }
    lines.append(
        f"| **mean** | {len(rows)} utterances | | {100 * mean['same_durations']:.0f} % | "
        f"{mean['wer_ours']:.3f} / {mean['wer_int8']:.3f} | {mean['similarity']:.3f} | {mean['mcd']:.2f} |"
    )
    table = "\n".join(lines)
    print(table)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(table + "\n")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(rows, f, indent=1, ensure_ascii=False)


if __name__ == "__main__":
    main()
