"""Dates in many formats -> ISO 8601 with an attention encoder-decoder, in a few minutes on a CPU.

python examples/seq2seq_dates.py            # the same as `rnnkit seq2seq demo`, from Python
python examples/seq2seq_dates.py --quick    # a small run (seconds) to see the pieces

Trains on generated pairs ("Tue, Mar 3, 1998" -> "1998-03-03"), prints test exact match and BLEU
beside the copy-the-input baseline, rewrites a few dates with beam search and draws where the
decoder looked while writing each output character.
"""

import sys
import tempfile
from pathlib import Path

from rnnkit.tasks import seq2seq

quick = "--quick" in sys.argv
settings = dict(examples=5000, hidden_size=64, epochs=3) if quick else dict(examples=20000, hidden_size=64, epochs=4)
run = seq2seq.train(dataset="dates", attention="luong", embedding_dim=32, batch_size=128, backend="compiled",
                    run_dir=tempfile.mkdtemp(prefix="seq2seq-dates-"), **settings)  # fmt: skip

for method, scores in run.report["test"].items():
    print(f"{method:>22}: exact match {100 * scores['exact_match']:5.1f}%  BLEU {scores['bleu']:5.1f}")

for text in ["3 March 1998", "Tue, Mar 3, 1998", "03/03/98", "March 3rd, 1998", "1998年3月3日", "the 1st of May, 2020"]:
    out = seq2seq.translate(run, text, beam_size=4, alpha=0.7)
    print(f"{text!r:>24} -> {out.text}   (score {out.score:.3f})")

plot = Path(run.run_dir) / "plots" / "march.png"
seq2seq.translate(run, "Tuesday, 3 March 1998", plot=plot)
print("attention plots:", run.report["plots"]["attention"], plot)
