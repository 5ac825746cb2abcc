"""Seed 001's toy: a 3 → 4 sigmoid → 1 sigmoid network learns XOR of the first two inputs.

Sum-of-squares loss, weights from U[0, 1) as in the seed, 1500 iterations of full-batch
gradient descent with learning rate 1 (the seed adds the raw gradient to the weights).
"""

import jax
import numpy as np

import jaxnn

X = np.array([[0, 0, 1], [0, 1, 1], [1, 0, 1], [1, 1, 1]], dtype=np.float32)
Y = np.array([[0], [1], [1], [0]], dtype=np.float32)


def main(seed: int = 0, iterations: int = 1500, learning_rate: float = 1.0) -> np.ndarray:
    model = jaxnn.Sequential((jaxnn.Dense(4, "sigmoid", init="uniform"), jaxnn.Dense(1, "sigmoid", init="uniform")))
    params = model.init(jax.random.key(seed), n_features=3)
    result = jaxnn.fit(model, params, X, Y, loss="sum_of_squares", epochs=iterations, learning_rate=learning_rate)
    predictions = np.asarray(model.apply(result.params, X))
    for step in range(0, iterations, 300):
        print(f"iteration {step:5d}  loss {float(result.history[step]):.6f}")
    print(f"iteration {iterations:5d}  loss {float(jaxnn.sum_of_squares(predictions, Y)):.6f}")
    for x, y, p in zip(X, Y[:, 0], predictions[:, 0], strict=True):
        print(f"  input {x.astype(int).tolist()}  target {y:.0f}  prediction {p:.4f}")
    return predictions


if __name__ == "__main__":
    main()
