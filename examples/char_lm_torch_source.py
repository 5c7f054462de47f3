"""A character language model on real text: PyTorch's own nn source code (as the char-rnn
tutorials do with the Linux kernel), installed from the registry with torch, so no download.

python examples/char_lm_torch_source.py                # about 10 minutes on 2 CPU cores
python examples/char_lm_torch_source.py --epochs 1 --hidden 64   # a quick look

Prints test bits per character beside unigram and Kneser-Ney baselines, then a sample.
"""

import argparse
import pathlib
import tempfile

import torch.nn.modules

from rnnkit.tasks.text import generate, train

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=4)
parser.add_argument("--hidden", type=int, default=256)
parser.add_argument("--layers", type=int, default=1)
args = parser.parse_args()

source = pathlib.Path(torch.nn.modules.__file__).parent
text = "\n".join(p.read_text(encoding="utf-8") for p in sorted(source.glob("*.py")))  # about 0.9 MB
corpus = pathlib.Path(tempfile.mkdtemp()) / "torch_nn_modules.py.txt"
corpus.write_text(text, encoding="utf-8")
print(f"{len(text):,} characters of torch {torch.__version__} nn/modules source")

run = train(corpus, hidden_size=args.hidden, num_layers=args.layers, embedding_dim=64, epochs=args.epochs)
report = run.report
print(f"test bits/char: {report['test_bits_per_char']:.3f}")
for name, bits in report["baselines_test_bits_per_char"].items():
    print(f"  {name}: {bits:.3f}")
print("--- sample ---")
print("    def forward(self, input" + generate(run.run_dir, prime="    def forward(self, input", length=400, seed=0))
