"""Cell speed against torch.nn.LSTM (same as `rnnkit bench cells`).

python bench/cells.py --size medium
python bench/cells.py --size small --json
"""

import sys

from rnnkit.cli import main

if __name__ == "__main__":
    sys.argv = ["rnnkit", "bench", "cells", *sys.argv[1:]]
    main()
