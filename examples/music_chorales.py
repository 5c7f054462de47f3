"""An LSTM over 88-key piano-rolls of Bach's chorales (music21's corpus): NLL per step beside the
baselines, then new chorales sampled to MIDI.

python examples/music_chorales.py            # the first run parses the chorales once (cached after)
python examples/music_chorales.py --quick    # 20 chorales, 2 epochs: a smoke test in seconds
"""

import sys

from rnnkit.tasks import music

quick = "--quick" in sys.argv
run = music.train(limit=20 if quick else None, epochs=2 if quick else 20, hidden_size=32 if quick else 128,
                  seed=0, log=print)  # fmt: skip
report = run.report
print(f"test NLL per step (nats): {report['test_nll_per_step']:.3f}")
for name, value in report["baselines_test_nll_per_step"].items():
    print(f"  {name + ' baseline:':24s} {value:.3f}")

# Three more chorales, a little tamer than the model's own distribution, as MIDI files.
written = music.sample(run.run_dir, num=3, temperature=0.8, seed=1, out=run.run_dir / "samples" / "tamer.mid")
for name, path in written.items():
    print(f"{name}: {path}")
