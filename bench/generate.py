"""Generation speed against a bare step loop (same as `rnnkit bench generate`).

python bench/generate.py
"""

import sys

from rnnkit.cli import main

if __name__ == "__main__":
    sys.argv = ["rnnkit", "bench", "generate", *sys.argv[1:]]
    main()
