"""The seed's iris example, run through ``jaxnn-train``.

The network 4 → 10 ReLU → 5 ReLU → 3 softmax with categorical cross-entropy, trained on iris split by
``train_test_split(test_size=0.25, random_state=42)`` (not stratified: ``--no-stratify``, since
jaxnn-train stratifies classes by default) with the inputs standardised on the training split: 2000
epochs of full-batch gradient descent at learning rate 0.1.  Prints the loss as it goes and the final
test accuracy.  Extra arguments go to ``jaxnn-train``, e.g. ``--out runs/iris``.
"""

import sys

from jaxnn.cli import main

SEED_EXAMPLE = (
    *("--dataset", "iris", "--test-size", "0.25", "--seed", "42", "--no-stratify"),  # the seed's split, unstratified
    *("--layers", "10,5", "--activation", "relu", "--loss", "categorical_cross_entropy"),
    *("--optimizer", "gd", "--lr", "0.1", "--epochs", "2000", "--batch-size", "full"),
)

if __name__ == "__main__":
    sys.exit(main([*SEED_EXAMPLE, *sys.argv[1:]]))
