#!/usr/bin/env python3
"""The book's chapter-3 run with network2.py's rule in float64 numpy, for several seeds.

What spread of best-epoch test accuracies does network2 itself give at the book's settings
(784-30-10, 30 epochs, mini-batch 10, eta 0.5, lambda 5.0, cross-entropy, the default
initializer, evaluation on the 10,000 test images)? The book reports one run, 96.49%; simdnet's
runs are compared with this distribution rather than with that one number.

This is an independent re-implementation of network2's semantics (not a copy of network2.py):
weights N(0, 1/n_in) and biases N(0, 1) from numpy's legacy `np.random.randn` (seeded here;
network2 leaves it unseeded), the training data shuffled with Python's `random.shuffle` every
epoch, mini-batches of consecutive examples, gradients summed over the mini-batch (as a
matrix product instead of network2's loop over examples, the same sum in float64 up to its
order), and w <- (1 - eta*lambda/n) w - (eta/m) sum(grad w), b <- b - (eta/m) sum(grad b).

Usage: python3 scripts/network2_numpy_runs.py MNIST_DIR [--large] [SEED ...]   (default seeds 0-4)
--large uses network2's large_weight_initializer instead (weights N(0, 1), the initializer of
the book's own 96.49% run). Prints one line per seed: the best test accuracy and its epoch.
About 15-20 s per seed on one core (set OPENBLAS_NUM_THREADS=1 to keep it to one).
"""

import os
import random
import struct
import sys

import numpy as np


def read_idx(path):
    with open(path, "rb") as f:
        data = f.read()
    magic, = struct.unpack(">I", data[:4])
    dims = magic & 0xFF
    shape = struct.unpack(">" + "I" * dims, data[4 : 4 + 4 * dims])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def load(mnist_dir):
    def images(name):
        x = read_idx(os.path.join(mnist_dir, name)).astype(np.float64) / 255.0
        return x.reshape(len(x), -1)

    def labels(name):
        return read_idx(os.path.join(mnist_dir, name)).astype(np.int64)

    train_x, train_y = images("train-images-idx3-ubyte"), labels("train-labels-idx1-ubyte")
    test_x, test_y = images("t10k-images-idx3-ubyte"), labels("t10k-labels-idx1-ubyte")
    # network2's loader: training = the first 50,000 images, test = t10k.
    return train_x[:50000], train_y[:50000], test_x, test_y


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def run(seed, train_x, train_y, test_x, test_y, sizes=(784, 30, 10), epochs=30, mb=10,
        eta=0.5, lmbda=5.0, large=False):
    np.random.seed(seed)
    random.seed(seed)
    # network2's default_weight_initializer (or its large_weight_initializer, which does not
    # scale the weights): weights[l] is n_out x n_in, biases drawn first.
    biases = [np.random.randn(y, 1) for y in sizes[1:]]
    scale = (lambda x: 1.0) if large else np.sqrt
    weights = [np.random.randn(y, x) / scale(x) for x, y in zip(sizes[:-1], sizes[1:])]
    n = len(train_x)
    order = list(range(n))
    onehot = np.eye(sizes[-1])
    best = (0.0, 0)
    for epoch in range(1, epochs + 1):
        random.shuffle(order)
        for k in range(0, n, mb):
            batch = order[k : k + mb]
            a = [train_x[batch].T]  # columns are examples
            for w, b in zip(weights, biases):
                a.append(sigmoid(w @ a[-1] + b))
            delta = a[-1] - onehot[train_y[batch]].T  # CrossEntropyCost.delta
            m = len(batch)
            for l in range(len(weights) - 1, -1, -1):
                grad_w = delta @ a[l].T
                grad_b = delta.sum(axis=1, keepdims=True)
                if l > 0:
                    # the error below, from the weights before their update
                    below = (weights[l].T @ delta) * a[l] * (1.0 - a[l])
                weights[l] = (1.0 - eta * (lmbda / n)) * weights[l] - (eta / m) * grad_w
                biases[l] = biases[l] - (eta / m) * grad_b
                if l > 0:
                    delta = below
        out = test_x.T
        for w, b in zip(weights, biases):
            out = sigmoid(w @ out + b)
        accuracy = float(np.mean(np.argmax(out, axis=0) == test_y))
        if accuracy > best[0]:
            best = (accuracy, epoch)
    return best


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    data = load(sys.argv[1])
    rest = sys.argv[2:]
    large = "--large" in rest
    seeds = [int(s) for s in rest if s != "--large"] or list(range(5))
    for seed in seeds:
        accuracy, epoch = run(seed, *data, large=large)
        print(f"seed {seed}: best test accuracy {accuracy * 100:.2f}% in epoch {epoch}", flush=True)


if __name__ == "__main__":
    main()
