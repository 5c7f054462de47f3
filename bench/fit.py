"""Training throughput of fit() against a plain PyTorch loop (same as `rnnkit bench fit`).

python bench/fit.py --size medium
"""

import sys

from rnnkit.cli import main

if __name__ == "__main__":
    sys.argv = ["rnnkit", "bench", "fit", *sys.argv[1:]]
    main()
