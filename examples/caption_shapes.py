"""One-to-many: caption generated shape images with a small CNN and an LSTM decoder (Show and Tell).

python examples/caption_shapes.py            # a few minutes on 2 CPU cores

The image's projected CNN feature is the decoder's first input; then <s> and the words.  The
test images show contents (e.g. "large blue triangle at the top") never drawn in training.
"""

import torch

from rnnkit.tasks import caption

data = caption.make_shapes(8, seed=1)
print("a generated image has these references:", *data.captions[0], sep="\n  ")

run = caption.train(images=4000, epochs=20, cell="lstm", seed=0, progress=False)
test, baseline = run.report["test"], run.report["baseline"]
print(f"test BLEU, greedy: {test['bleu_greedy']:.1f}  beam 3: {test['bleu_beam3']:.1f}  "
      f"most frequent training caption: {baseline['bleu']:.1f} ({baseline['most_frequent_caption']!r})")  # fmt: skip
exact, slots = test["content_match_greedy"], test["content_slots_greedy"]
print(f"content exactly right (greedy): {exact:.1%}; content slots right: {slots:.1%}")

# caption new images directly, greedy and with a beam
images = torch.as_tensor(data.inputs[:4])
for greedy, beam, refs in zip(caption.caption(run.model, run.vocab, images),
                              caption.caption(run.model, run.vocab, images, beam_size=3), data.captions):  # fmt: skip
    print(f"greedy: {greedy:45s} beam: {beam:45s} reference: {refs[0]}")
print("grid of test captions:", run.report["plots"]["captions"])
