"""Peak memory of building and training on generated corpora of 100 MB and 1 GB (same as `rnnkit bench corpus`).

python bench/corpus.py --sizes 100,1000
"""

import sys

from rnnkit.cli import main

if __name__ == "__main__":
    sys.argv = ["rnnkit", "bench", "corpus", *sys.argv[1:]]
    main()
