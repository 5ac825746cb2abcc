import jax
import numpy as np

import jaxnn
from jaxnn.data import iris_split, one_hot


def test_iris_seed_network_reaches_097():
    split = iris_split()
    model = jaxnn.Sequential((jaxnn.Dense(10, "relu"), jaxnn.Dense(5, "relu"), jaxnn.Dense(3, "softmax")))
    params = model.init(jax.random.key(0), 4)
    result = jaxnn.fit(
        model, params, split.x_train, one_hot(split.y_train, 3), loss="categorical_cross_entropy", epochs=2000,
        learning_rate=0.1,
    )
    predicted = np.argmax(model.apply(result.params, split.x_test.astype(np.float32)), axis=1)
    assert np.mean(predicted == split.y_test) >= 0.97
