"""Forecast training throughput (windows/s) of fit() against a plain PyTorch loop (same as `rnnkit bench forecast`).

python bench/forecast.py --sizes small,medium --repeats 3
"""

import sys

from rnnkit.cli import main

if __name__ == "__main__":
    sys.argv = ["rnnkit", "bench", "forecast", *sys.argv[1:]]
    main()
