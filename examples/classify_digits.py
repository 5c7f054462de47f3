"""Handwritten digits read row by row: an LSTM sees 8 steps of 8 pixels and names the digit.

python examples/classify_digits.py            # about a minute on two CPU cores

The same as `rnnkit classify demo`, through the Python API, then one image classified by hand.
"""

from sklearn.datasets import load_digits

from rnnkit.tasks import classify

run = classify.demo(seed=0, runs_dir="runs", progress=False)
report = run.report
print(f"{report['model']}: test accuracy {report['test']['accuracy']:.4f}, macro F1 {report['test']['macro_f1']:.4f}")
for name, row in report["baselines"].items():
    print(f"  {name}: accuracy {row['accuracy']:.4f}, macro F1 {row['macro_f1']:.4f}")
print("confusion matrix:", report["paths"]["confusion_matrix"])

digits = load_digits()
image = digits.images[:1]  # (1, 8, 8): one sequence of 8 rows, raw pixel values 0..16 (scaled as in training)
best = classify.predict(run.run_dir, sequences=image, top=3)["predictions"][0]
print(
    f"the first image is a {digits.target[0]}; the model says {best['label']} (p={best['probability']:.3f}), "
    f"top 3: {best['top']}"
)
