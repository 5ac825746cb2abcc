"""The seed's iris example: 4 → 10 ReLU → 5 ReLU → 3 softmax, categorical cross-entropy.

train_test_split(test_size=0.25, random_state=42), inputs standardised on the training split,
full-batch gradient descent; prints the loss as it goes and the final test accuracy.
"""

import jax
import numpy as np

import jaxnn
from jaxnn.data import iris_split, one_hot

EPOCHS, CHUNK, LEARNING_RATE, SEED = 2000, 200, 0.1, 0


def main() -> float:
    split = iris_split()
    model = jaxnn.Sequential((jaxnn.Dense(10, "relu"), jaxnn.Dense(5, "relu"), jaxnn.Dense(3, "softmax")))
    params = model.init(jax.random.key(SEED), n_features=4)
    targets = one_hot(split.y_train, 3)
    for done in range(0, EPOCHS, CHUNK):
        result = jaxnn.fit(
            model,
            params,
            split.x_train,
            targets,
            loss="categorical_cross_entropy",
            epochs=CHUNK,
            learning_rate=LEARNING_RATE,
        )
        params = result.params
        print(f"epoch {done + CHUNK:5d}  loss {float(result.history[-1]):.4f}")
    predicted = np.argmax(model.apply(params, split.x_test.astype(np.float32)), axis=1)
    accuracy = float(np.mean(predicted == split.y_test))
    print(f"test accuracy {accuracy:.4f}")
    return accuracy


if __name__ == "__main__":
    main()
