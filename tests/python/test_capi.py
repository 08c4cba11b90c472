#!/usr/bin/env python3
"""The C ABI from Python (ctypes), against numpy.

Loads the shared library (SIMDNET_LIB, default target/release/libsimdnet.so, built by
`cargo build --release --features capi`) and checks:

* cblas_sgemm / simdnet_sgemm on random inputs for row- and column-major storage, every
  transpose combination, padded leading dimensions, an alpha/beta grid and odd sizes, against
  numpy's float64 product (padding must be left untouched);
* beta = 0 over NaN, alpha = 0 over NaN operands;
* the error codes and messages of bad arguments;
* the inference API on a random network2 JSON model written here, against a numpy float64
  forward pass of the same JSON: activations, predicted classes (numpy's argmax), and errors.

Run: python3 tests/python/test_capi.py   (from the repository root; needs numpy)
"""

import ctypes
import json
import os
import sys
import tempfile
import unittest

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LIB_PATH = os.environ.get("SIMDNET_LIB", os.path.join(ROOT, "target", "release", "libsimdnet.so"))

ROW_MAJOR, COL_MAJOR = 101, 102
NO_TRANS, TRANS, CONJ_TRANS = 111, 112, 113
OK, ERR_NULL, ERR_ARG, ERR_SIZE, ERR_IO, ERR_MODEL = 0, 1, 2, 3, 4, 5

F32P = ctypes.POINTER(ctypes.c_float)
U32P = ctypes.POINTER(ctypes.c_uint32)
SGEMM_ARGS = [ctypes.c_int] * 6 + [ctypes.c_float, F32P, ctypes.c_int, F32P, ctypes.c_int,
                                   ctypes.c_float, F32P, ctypes.c_int]


def load_library():
    lib = ctypes.CDLL(LIB_PATH)
    lib.cblas_sgemm.argtypes = SGEMM_ARGS
    lib.cblas_sgemm.restype = None
    lib.simdnet_sgemm.argtypes = SGEMM_ARGS
    lib.simdnet_sgemm.restype = ctypes.c_int
    lib.simdnet_last_error.argtypes = []
    lib.simdnet_last_error.restype = ctypes.c_char_p
    lib.simdnet_network_load.argtypes = [ctypes.c_char_p]
    lib.simdnet_network_load.restype = ctypes.c_void_p
    lib.simdnet_network_free.argtypes = [ctypes.c_void_p]
    lib.simdnet_network_free.restype = None
    for name in ("simdnet_network_inputs", "simdnet_network_outputs"):
        getattr(lib, name).argtypes = [ctypes.c_void_p]
        getattr(lib, name).restype = ctypes.c_size_t
    lib.simdnet_network_feedforward.argtypes = [ctypes.c_void_p, F32P, ctypes.c_size_t, F32P,
                                                ctypes.c_size_t]
    lib.simdnet_network_feedforward.restype = ctypes.c_int
    lib.simdnet_network_predict.argtypes = [ctypes.c_void_p, F32P, ctypes.c_size_t, U32P]
    lib.simdnet_network_predict.restype = ctypes.c_int
    return lib


LIB = load_library()


def ptr(array, kind=F32P):
    return array.ctypes.data_as(kind)


def last_error():
    msg = LIB.simdnet_last_error()
    return None if msg is None else msg.decode()


def stored(rng, rows, cols, row_major, pad):
    """A rows x cols float32 matrix in a buffer with leading dimension `extent + pad`.

    Returns (buffer, view, ld): `view` is the logical matrix (a numpy view into `buffer`)."""
    if row_major:
        ld = max(1, cols + pad)
        buf = rng.standard_normal((rows, ld)).astype(np.float32)
        return buf, buf[:, :cols], ld
    ld = max(1, rows + pad)
    buf = rng.standard_normal((cols, ld)).astype(np.float32)
    return buf, buf[:, :rows].T, ld


def sgemm(fn, layout, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
    return fn(layout, ta, tb, m, n, k, alpha, ptr(a), lda, ptr(b), ldb, beta, ptr(c), ldc)


class Sgemm(unittest.TestCase):
    def check_case(self, rng, row_major, ta, tb, m, n, k, pad, alpha, beta):
        a_shape = (k, m) if ta != NO_TRANS else (m, k)
        b_shape = (n, k) if tb != NO_TRANS else (k, n)
        a_buf, a, lda = stored(rng, *a_shape, row_major, pad)
        b_buf, b, ldb = stored(rng, *b_shape, row_major, pad)
        c_buf, c, ldc = stored(rng, m, n, row_major, pad)
        op_a = a.T if ta != NO_TRANS else a
        op_b = b.T if tb != NO_TRANS else b
        c0 = c.astype(np.float64)
        want = alpha * (op_a.astype(np.float64) @ op_b.astype(np.float64)) + beta * c0
        before = c_buf.copy()
        layout = ROW_MAJOR if row_major else COL_MAJOR
        rc = sgemm(LIB.simdnet_sgemm, layout, ta, tb, m, n, k, alpha, a_buf, lda, b_buf, ldb,
                   beta, c_buf, ldc)
        self.assertEqual(rc, OK, last_error())
        # Products of normal deviates: the error grows like sqrt(k); compare relative to the
        # magnitudes that were summed.
        scale = abs(alpha) * (np.abs(op_a) @ np.abs(op_b)) + abs(beta) * np.abs(c0)
        err = np.abs(c - want) / (scale + 1e-30)
        self.assertLess(err.max(initial=0.0), 1e-5,
                        f"layout {layout} ta {ta} tb {tb} ({m},{n},{k}) pad {pad}")
        # The padding of C is untouched.
        mask = np.ones_like(c_buf, dtype=bool)
        if row_major:
            mask[:, :n] = False
        else:
            mask[:, :m] = False
        np.testing.assert_array_equal(c_buf[mask], before[mask])

    def test_random_layouts_against_numpy(self):
        rng = np.random.default_rng(2024)
        shapes = [(1, 1, 1), (3, 5, 7), (17, 9, 33), (64, 65, 63), (100, 100, 784),
                  (10, 30, 784), (129, 71, 257), (2, 300, 5)]
        cases = 0
        for m, n, k in shapes:
            for row_major in (True, False):
                for ta in (NO_TRANS, TRANS, CONJ_TRANS):
                    for tb in (NO_TRANS, TRANS):
                        pad = int(rng.integers(0, 4))
                        alpha, beta = [(1.0, 0.0), (0.75, -1.5), (-2.0, 1.0)][cases % 3]
                        self.check_case(rng, row_major, ta, tb, m, n, k, pad, alpha, beta)
                        cases += 1
        self.assertEqual(cases, len(shapes) * 12)

    def test_cblas_sgemm_is_the_same_call(self):
        rng = np.random.default_rng(7)
        a = rng.standard_normal((6, 4)).astype(np.float32)
        b = rng.standard_normal((4, 5)).astype(np.float32)
        c = np.empty((6, 5), dtype=np.float32)
        LIB.cblas_sgemm(ROW_MAJOR, NO_TRANS, NO_TRANS, 6, 5, 4, 1.0, ptr(a), 4, ptr(b), 5, 0.0,
                        ptr(c), 5)
        self.assertIsNone(last_error())
        np.testing.assert_allclose(c, a.astype(np.float64) @ b, rtol=1e-5, atol=1e-5)
        # Column-major: numpy's Fortran order is exactly that.
        af, bf = np.asfortranarray(a), np.asfortranarray(b)
        cf = np.asfortranarray(np.zeros((6, 5), dtype=np.float32))
        LIB.cblas_sgemm(COL_MAJOR, NO_TRANS, NO_TRANS, 6, 5, 4, 1.0, ptr(af), 6, ptr(bf), 4,
                        0.0, ptr(cf), 6)
        np.testing.assert_array_equal(cf, c)

    def test_beta_zero_and_alpha_zero(self):
        a = np.full((3, 3), np.nan, dtype=np.float32)
        c = np.full((3, 3), np.nan, dtype=np.float32)
        ok = np.eye(3, dtype=np.float32)
        LIB.cblas_sgemm(ROW_MAJOR, NO_TRANS, NO_TRANS, 3, 3, 3, 2.0, ptr(ok), 3, ptr(ok), 3, 0.0,
                        ptr(c), 3)
        np.testing.assert_array_equal(c, 2 * np.eye(3))
        LIB.cblas_sgemm(ROW_MAJOR, NO_TRANS, NO_TRANS, 3, 3, 3, 0.0, ptr(a), 3, ptr(a), 3, 0.5,
                        ptr(c), 3)
        np.testing.assert_array_equal(c, np.eye(3))

    def test_bad_arguments(self):
        a = np.ones((2, 3), dtype=np.float32)
        b = np.ones((3, 2), dtype=np.float32)
        c = np.full((2, 2), 42.0, dtype=np.float32)
        cases = [
            ((100, NO_TRANS, NO_TRANS, 2, 2, 3, 1.0, a, 3, b, 2, 0.0, c, 2), ERR_ARG, "parameter 1 "),
            ((ROW_MAJOR, 7, NO_TRANS, 2, 2, 3, 1.0, a, 3, b, 2, 0.0, c, 2), ERR_ARG, "parameter 2 "),
            ((ROW_MAJOR, NO_TRANS, NO_TRANS, 2, 2, -3, 1.0, a, 3, b, 2, 0.0, c, 2), ERR_ARG,
             "parameter 6 "),
            ((ROW_MAJOR, NO_TRANS, NO_TRANS, 2, 2, 3, 1.0, a, 2, b, 2, 0.0, c, 2), ERR_ARG,
             "parameter 9 (lda = 2) must be >= max(1, 3)"),
            ((COL_MAJOR, NO_TRANS, NO_TRANS, 2, 2, 3, 1.0, a, 2, b, 2, 0.0, c, 2), ERR_ARG,
             "parameter 11 (ldb = 2) must be >= max(1, 3)"),
            ((ROW_MAJOR, NO_TRANS, NO_TRANS, 2, 2, 3, 1.0, a, 3, b, 2, 0.0, c, 1), ERR_ARG,
             "parameter 14 "),
        ]
        for args, code, needle in cases:
            self.assertEqual(sgemm(LIB.simdnet_sgemm, *args), code, args)
            self.assertIn(needle, last_error())
        rc = LIB.simdnet_sgemm(ROW_MAJOR, NO_TRANS, NO_TRANS, 2, 2, 3, 1.0, None, 3, ptr(b), 2,
                               0.0, ptr(c), 2)
        self.assertEqual(rc, ERR_NULL)
        self.assertIn("parameter 8 (A) is NULL", last_error())
        np.testing.assert_array_equal(c, 42.0)
        LIB.cblas_sgemm(ROW_MAJOR, NO_TRANS, NO_TRANS, 2, 2, 3, 1.0, ptr(a), 1, ptr(b), 2, 0.0,
                        ptr(c), 2)
        self.assertIn("cblas_sgemm: parameter 9", last_error())
        np.testing.assert_array_equal(c, 42.0)


def random_model(rng, sizes):
    return {
        "sizes": sizes,
        "weights": [(rng.standard_normal((o, i)) / np.sqrt(i)).tolist()
                    for i, o in zip(sizes[:-1], sizes[1:])],
        "biases": [rng.standard_normal((o, 1)).tolist() for o in sizes[1:]],
        "cost": "CrossEntropyCost",
    }


def numpy_forward(model, x):
    a = x.astype(np.float64)
    for w, b in zip(model["weights"], model["biases"]):
        # network2 keeps float64; simdnet reads each number as the nearest f32.
        w = np.array(w, dtype=np.float32).astype(np.float64)
        b = np.array(b, dtype=np.float32).astype(np.float64)
        a = 1.0 / (1.0 + np.exp(-(a @ w.T + b.T)))
    return a


class Inference(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.TemporaryDirectory()
        rng = np.random.default_rng(5)
        cls.model = random_model(rng, [20, 16, 7, 5])
        cls.path = os.path.join(cls.dir.name, "model.json")
        with open(cls.path, "w") as f:
            json.dump(cls.model, f)
        cls.net = LIB.simdnet_network_load(cls.path.encode())
        assert cls.net, last_error()

    @classmethod
    def tearDownClass(cls):
        LIB.simdnet_network_free(cls.net)
        cls.dir.cleanup()

    def test_sizes(self):
        self.assertEqual(LIB.simdnet_network_inputs(self.net), 20)
        self.assertEqual(LIB.simdnet_network_outputs(self.net), 5)

    def test_feedforward_and_predict_match_numpy(self):
        rng = np.random.default_rng(11)
        for rows in (1, 3, 250, 1001):
            x = rng.random((rows, 20), dtype=np.float32)
            out = np.empty((rows, 5), dtype=np.float32)
            rc = LIB.simdnet_network_feedforward(self.net, ptr(x), rows, ptr(out), out.size)
            self.assertEqual(rc, OK, last_error())
            want = numpy_forward(self.model, x)
            np.testing.assert_allclose(out, want, rtol=0, atol=2e-6)
            classes = np.empty(rows, dtype=np.uint32)
            rc = LIB.simdnet_network_predict(self.net, ptr(x), rows, ptr(classes, U32P))
            self.assertEqual(rc, OK, last_error())
            # The class is numpy's argmax of simdnet's own outputs, and numpy's argmax of the
            # float64 pass wherever the top two outputs are not within float32 rounding.
            np.testing.assert_array_equal(classes, np.argmax(out, axis=1))
            top2 = np.sort(want, axis=1)[:, -2:]
            clear = top2[:, 1] - top2[:, 0] > 1e-5
            np.testing.assert_array_equal(classes[clear], np.argmax(want, axis=1)[clear])

    def test_ties_pick_the_first_maximum(self):
        model = {"sizes": [2, 3], "weights": [[[0, 0], [0, 0], [0, 0]]],
                 "biases": [[[-1.0], [3.0], [3.0]]], "cost": "QuadraticCost"}
        path = os.path.join(self.dir.name, "ties.json")
        with open(path, "w") as f:
            json.dump(model, f)
        net = LIB.simdnet_network_load(path.encode())
        self.assertTrue(net, last_error())
        x = np.zeros((4, 2), dtype=np.float32)
        classes = np.full(4, 99, dtype=np.uint32)
        self.assertEqual(LIB.simdnet_network_predict(net, ptr(x), 4, ptr(classes, U32P)), OK)
        np.testing.assert_array_equal(classes, [1, 1, 1, 1])
        LIB.simdnet_network_free(net)

    def test_errors(self):
        x = np.zeros((4, 20), dtype=np.float32)
        out = np.full((4, 5), -1.0, dtype=np.float32)
        rc = LIB.simdnet_network_feedforward(self.net, ptr(x), 4, ptr(out), 19)
        self.assertEqual(rc, ERR_SIZE)
        self.assertIn("out_len is 19", last_error())
        np.testing.assert_array_equal(out, -1.0)
        self.assertEqual(LIB.simdnet_network_feedforward(None, ptr(x), 4, ptr(out), 20), ERR_NULL)
        self.assertEqual(LIB.simdnet_network_predict(self.net, None, 4, None), ERR_NULL)
        self.assertEqual(LIB.simdnet_network_predict(self.net, None, 0, None), OK)
        self.assertIsNone(last_error())
        self.assertFalse(LIB.simdnet_network_load(b"/nonexistent/model.json"))
        self.assertIn("/nonexistent/model.json", last_error())
        bad = os.path.join(self.dir.name, "bad.json")
        with open(bad, "w") as f:
            f.write('{"sizes": [2, 2], "weights": [[[1, 2]]], "biases": [[[0], [0]]], '
                    '"cost": "CrossEntropyCost"}')
        self.assertFalse(LIB.simdnet_network_load(bad.encode()))
        self.assertIn("bad.json", last_error())


if __name__ == "__main__":
    print(f"library: {LIB_PATH}, numpy {np.__version__}")
    result = unittest.main(exit=False, verbosity=2).result
    sys.exit(0 if result.wasSuccessful() else 1)
