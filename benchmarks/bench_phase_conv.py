"""The spectrogram discriminator's convolutions: ``nn.Conv2d`` against ``spectrogram_conv2d``.

Times forward + backward of each layer of one MSD resolution (FFT 1024: a ``[B, 1, 721, 257]``
magnitude image for 1.5 s of 24 kHz audio) at the micro (4), shipped (8) and LibriTTS (32) widths, as
the discriminator's step runs it (weight gradients) and as the generator's step does (input gradient,
weights frozen), and checks that both give the same output. The stock layer gets the default layout,
as before the rewrite; the first layer (1 input channel) goes through the width-polyphase rewrite, the
others run in channels-last layout (``tts_adapt/models/styletts2/phase_conv.py``). Usage:

    python benchmarks/bench_phase_conv.py [--threads 2] [--batch-size 8] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from tts_adapt.models.styletts2.discriminators import SpecDiscriminator
from tts_adapt.models.styletts2.phase_conv import spectrogram_conv2d


def seconds(run, repeats: int) -> float:
    run()  # warm-up: kernel selection and allocator
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    ap.add_argument("--batch-size", type=int, default=8, help="utterances per batch")
    ap.add_argument("--repeats", type=int, default=5, help="timed repeats (median)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"MSD layers, FFT 1024, batch {args.batch_size}, {args.threads} threads, forward + backward, ms")
    print("D step: weight gradients (and the input's after the first layer); G step: input gradient only")
    header = ("width", "layer", "input", "D: stock", "D: ours", "ratio")
    header += ("G: stock", "G: ours", "ratio", "max diff")
    print("{:>5} {:>5} {:>20} {:>9} {:>8} {:>6} {:>9} {:>8} {:>6} {:>9}".format(*header))
    for width in (4, 8, 32):
        torch.manual_seed(0)
        disc = SpecDiscriminator(channels=width)
        x = torch.randn(args.batch_size, 1, 721, 257)
        for i, conv in enumerate([*disc.discriminators, disc.out]):
            x = x.contiguous()  # the default layout, as the layer received it before the rewrite
            with torch.no_grad():
                diff = float((conv(x) - spectrogram_conv2d(conv, x)).abs().max())
            row = []
            for d_step in (True, False):
                inp = x.detach().requires_grad_(i > 0 or not d_step)
                conv.requires_grad_(d_step)
                grad = torch.randn_like(conv(inp))

                def step(f, inp=inp, conv=conv, grad=grad):
                    conv.zero_grad(set_to_none=True)
                    inp.grad = None
                    f(conv, inp).backward(grad)

                stock = seconds(lambda step=step: step(lambda c, t: c(t)), args.repeats)
                ours = seconds(lambda step=step: step(spectrogram_conv2d), args.repeats)
                row += [1e3 * stock, 1e3 * ours, stock / ours]
            conv.requires_grad_(True)
            shape = "x".join(str(d) for d in x.shape)
            print(
                "{:>5} {:>5} {:>20} {:>9.1f} {:>8.1f} {:>6.2f} {:>9.1f} {:>8.1f} {:>6.2f} {:>9.1e}".format(
                    width, i, shape, *row, diff
                )
            )
            with torch.no_grad():
                x = torch.nn.functional.leaky_relu(conv(x), 0.1)


if __name__ == "__main__":
    main()
