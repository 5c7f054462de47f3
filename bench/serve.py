"""Load test of the local HTTP service (same as `rnnkit bench serve`).

python bench/serve.py --levels 1,4,16,32 --requests 128
"""

import sys

from rnnkit.cli import main

if __name__ == "__main__":
    sys.argv = ["rnnkit", "bench", "serve", *sys.argv[1:]]
    main()
