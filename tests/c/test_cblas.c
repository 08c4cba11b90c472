/*
 * The C ABI from C: compiled against include/simdnet.h (so the header must match the
 * exports) and linked against libsimdnet.a or libsimdnet.so by scripts/capi-tests.sh.
 *
 * Checks cblas_sgemm against a naive double-precision loop over every layout and transpose
 * combination, odd sizes, padded leading dimensions and an alpha/beta grid (with guard values
 * in C's padding that must survive); beta = 0 over NaN; alpha = 0 and K = 0 with NaN (or
 * NULL) operands; quick returns; every kind of bad argument through simdnet_sgemm's return
 * code and simdnet_last_error(); and the inference API on a small model file written here.
 *
 * Usage: test_cblas [DIR]   (DIR: where to write the model files; default /tmp)
 * Exit status 0 when every check passes; each failure is printed.
 */
#include "simdnet.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures = 0;
static int checks = 0;

#define CHECK(cond, ...)                                                                       \
    do {                                                                                       \
        checks++;                                                                              \
        if (!(cond)) {                                                                         \
            failures++;                                                                        \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                               \
            fprintf(stderr, __VA_ARGS__);                                                      \
            fprintf(stderr, "\n");                                                             \
        }                                                                                      \
    } while (0)

/* Deterministic pseudo-random floats in [-1, 1). */
static unsigned long long rng_state = 0x9E3779B97F4A7C15ull;
static float frand(void) {
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((rng_state >> 40) & 0xFFFFFF) / (float)0x800000 - 1.0f;
}

/* Element (r, s) of a stored matrix with leading dimension ld. */
static size_t at(int row_major, int r, int s, int ld) {
    return row_major ? (size_t)r * ld + s : (size_t)r + (size_t)s * ld;
}

/* The naive reference, in double, with CBLAS semantics (beta == 0: C not read). */
static void naive(int row_major, int ta, int tb, int m, int n, int k, float alpha,
                  const float *a, int lda, const float *b, int ldb, float beta, float *c,
                  int ldc) {
    for (int i = 0; i < m; i++) {
        for (int j = 0; j < n; j++) {
            double dot = 0.0;
            for (int p = 0; p < k; p++) {
                double x = ta ? a[at(row_major, p, i, lda)] : a[at(row_major, i, p, lda)];
                double y = tb ? b[at(row_major, j, p, ldb)] : b[at(row_major, p, j, ldb)];
                dot += x * y;
            }
            size_t idx = at(row_major, i, j, ldc);
            double old = beta == 0.0f ? 0.0 : (double)beta * c[idx];
            c[idx] = (float)((double)alpha * dot + old);
        }
    }
}

static const CBLAS_TRANSPOSE TRANS[3] = {CblasNoTrans, CblasTrans, CblasConjTrans};

/* One product in one layout; returns the number of mismatching elements. */
static int one_case(CBLAS_LAYOUT layout, CBLAS_TRANSPOSE ta_e, CBLAS_TRANSPOSE tb_e, int m,
                    int n, int k, int pad, float alpha, float beta) {
    int row_major = layout == CblasRowMajor;
    int ta = ta_e != CblasNoTrans, tb = tb_e != CblasNoTrans;
    int a_rows = ta ? k : m, a_cols = ta ? m : k;
    int b_rows = tb ? n : k, b_cols = tb ? k : n;
    int lda = (row_major ? a_cols : a_rows) + pad;
    int ldb = (row_major ? b_cols : b_rows) + pad;
    int ldc = (row_major ? n : m) + pad;
    if (lda < 1) lda = 1;
    if (ldb < 1) ldb = 1;
    if (ldc < 1) ldc = 1;
    size_t a_len = (size_t)lda * (size_t)(row_major ? a_rows : a_cols) + 1;
    size_t b_len = (size_t)ldb * (size_t)(row_major ? b_rows : b_cols) + 1;
    size_t c_len = (size_t)ldc * (size_t)(row_major ? m : n) + 1;
    float *a = malloc(a_len * sizeof(float));
    float *b = malloc(b_len * sizeof(float));
    float *c = malloc(c_len * sizeof(float));
    float *want = malloc(c_len * sizeof(float));
    for (size_t i = 0; i < a_len; i++) a[i] = frand();
    for (size_t i = 0; i < b_len; i++) b[i] = frand();
    /* C: random values, and a guard value in the padding that must survive. */
    for (size_t i = 0; i < c_len; i++) c[i] = 1234.5f;
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) c[at(row_major, i, j, ldc)] = frand();
    memcpy(want, c, c_len * sizeof(float));
    naive(row_major, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, want, ldc);
    cblas_sgemm(layout, ta_e, tb_e, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    int bad = 0;
    if (simdnet_last_error() != NULL) {
        fprintf(stderr, "unexpected error: %s\n", simdnet_last_error());
        bad++;
    }
    double tol = 1e-5 * (k + 1) * (fabs(alpha) + 1.0) + 1e-5;
    for (size_t i = 0; i < c_len; i++) {
        if (!(fabs((double)c[i] - (double)want[i]) <= tol)) {
            if (bad < 3)
                fprintf(stderr,
                        "  %s A%s B%s m=%d n=%d k=%d pad=%d alpha=%g beta=%g: C[%zu] = %g, "
                        "want %g\n",
                        row_major ? "row" : "col", ta ? "^T" : "", tb ? "^T" : "", m, n, k, pad,
                        alpha, beta, i, c[i], want[i]);
            bad++;
        }
    }
    free(a);
    free(b);
    free(c);
    free(want);
    return bad;
}

static void test_layouts(void) {
    static const int shapes[][3] = {{1, 1, 1},   {7, 5, 3},     {5, 7, 1},    {17, 33, 9},
                                    {1, 40, 13}, {40, 1, 13},   {13, 19, 64}, {65, 31, 70},
                                    {10, 30, 784}, {100, 100, 784}, {130, 257, 67}};
    static const float ab[][2] = {{1.0f, 0.0f}, {2.5f, -0.5f}, {-1.0f, 1.0f}, {0.0f, 2.0f}};
    int cases = 0;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        for (int lay = 0; lay < 2; lay++) {
            CBLAS_LAYOUT layout = lay ? CblasColMajor : CblasRowMajor;
            for (int ta = 0; ta < 3; ta++) {
                for (int tb = 0; tb < 2; tb++) {
                    for (int pad = 0; pad <= 3; pad += 3) {
                        for (size_t g = 0; g < sizeof ab / sizeof ab[0]; g++) {
                            int m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
                            /* the ConjTrans variant on A only once per shape and layout */
                            if (ta == 2 && (pad || g)) continue;
                            int bad = one_case(layout, TRANS[ta], TRANS[tb], m, n, k, pad,
                                               ab[g][0], ab[g][1]);
                            CHECK(bad == 0, "%d wrong elements (shape %d,%d,%d)", bad, m, n, k);
                            cases++;
                        }
                    }
                }
            }
        }
    }
    /* CblasConjTrans on B as well. */
    CHECK(one_case(CblasRowMajor, CblasConjTrans, CblasConjTrans, 9, 11, 6, 1, 1.5f, 0.5f) ==
              0,
          "ConjTrans on both");
    printf("layouts: %d products checked against the naive loop\n", cases + 1);
}

static void test_special_values(void) {
    /* beta = 0: C holds NaN and must be overwritten, not read. */
    float a[6] = {1, 2, 3, 4, 5, 6}; /* 2 x 3 row-major */
    float b[6] = {1, 0, 0, 1, 1, 1}; /* 3 x 2 row-major */
    float c[4] = {NAN, NAN, NAN, NAN};
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, 2, 2, 3, 1.0f, a, 3, b, 2, 0.0f, c,
                2);
    CHECK(c[0] == 4 && c[1] == 5 && c[2] == 10 && c[3] == 11,
          "beta=0 over NaN: got %g %g %g %g", c[0], c[1], c[2], c[3]);

    /* alpha = 0: A and B are not read (NaN in them does not propagate); C = beta * C. */
    float an[6] = {NAN, NAN, NAN, NAN, NAN, NAN};
    float c2[4] = {1, 2, 3, 4};
    cblas_sgemm(CblasColMajor, CblasTrans, CblasNoTrans, 2, 2, 3, 0.0f, an, 3, an, 3, 3.0f, c2,
                2);
    CHECK(c2[0] == 3 && c2[1] == 6 && c2[2] == 9 && c2[3] == 12, "alpha=0: got %g %g %g %g",
          c2[0], c2[1], c2[2], c2[3]);
    /* ... and they may then be NULL, as may they when K = 0. */
    int rc = simdnet_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, 2, 2, 3, 0.0f, NULL, 3,
                           NULL, 2, 0.5f, c2, 2);
    CHECK(rc == SIMDNET_OK && c2[0] == 1.5f && c2[3] == 6, "alpha=0 with NULL A, B: rc %d", rc);
    rc = simdnet_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, 2, 2, 0, 1.0f, NULL, 1, NULL,
                       2, 0.0f, c2, 2);
    CHECK(rc == SIMDNET_OK && c2[0] == 0 && c2[3] == 0, "K=0, beta=0 zeroes C: rc %d", rc);
    /* alpha = 0 and beta = 0 with NaN in C: zeros. */
    float c3[4] = {NAN, NAN, NAN, NAN};
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, 2, 2, 3, 0.0f, an, 3, an, 2, 0.0f,
                c3, 2);
    CHECK(c3[0] == 0 && c3[1] == 0 && c3[2] == 0 && c3[3] == 0, "alpha=beta=0 over NaN");
    /* M = 0 or N = 0: nothing is touched, NULL everywhere is fine. */
    rc = simdnet_sgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, 0, 5, 3, 1.0f, NULL, 1, NULL,
                       3, 0.0f, NULL, 1);
    CHECK(rc == SIMDNET_OK, "M=0 quick return: rc %d", rc);
    rc = simdnet_sgemm(CblasRowMajor, CblasTrans, CblasTrans, 4, 0, 3, 1.0f, NULL, 4, NULL, 3,
                       0.0f, NULL, 1);
    CHECK(rc == SIMDNET_OK, "N=0 quick return: rc %d", rc);
    CHECK(simdnet_last_error() == NULL, "a successful call clears the error");
}

/* A call that must fail with `code`, leave C untouched and name `needle` in its message. */
static void expect_error(int rc, int code, const float *c, const char *needle, const char *what) {
    const char *msg = simdnet_last_error();
    CHECK(rc == code, "%s: returned %d, want %d (%s)", what, rc, code, msg ? msg : "no message");
    CHECK(msg != NULL && strstr(msg, needle) != NULL, "%s: message %s lacks \"%s\"", what,
          msg ? msg : "(null)", needle);
    if (c) CHECK(c[0] == 42.0f && c[1] == 42.0f, "%s: C was modified", what);
}

static void test_bad_arguments(void) {
    float a[12] = {0}, b[12] = {0};
    float c[12];
    for (int i = 0; i < 12; i++) c[i] = 42.0f;
    const CBLAS_LAYOUT R = CblasRowMajor, C = CblasColMajor;
    const CBLAS_TRANSPOSE N = CblasNoTrans, T = CblasTrans;
    /* 2 x 3 times 3 x 2 into 2 x 2: the minimum leading dimensions are row-major lda 3, ldb 2,
     * ldc 2; column-major lda 2, ldb 3, ldc 2. */
    expect_error(simdnet_sgemm((CBLAS_LAYOUT)100, N, N, 2, 2, 3, 1, a, 3, b, 2, 0, c, 2),
                 SIMDNET_ERR_BAD_ARGUMENT, c, "parameter 1 ", "bad layout");
    expect_error(simdnet_sgemm(R, (CBLAS_TRANSPOSE)110, N, 2, 2, 3, 1, a, 3, b, 2, 0, c, 2),
                 SIMDNET_ERR_BAD_ARGUMENT, c, "parameter 2 ", "bad TransA");
    expect_error(simdnet_sgemm(R, N, (CBLAS_TRANSPOSE)0, 2, 2, 3, 1, a, 3, b, 2, 0, c, 2),
                 SIMDNET_ERR_BAD_ARGUMENT, c, "parameter 3 ", "bad TransB");
    expect_error(simdnet_sgemm(R, N, N, -1, 2, 3, 1, a, 3, b, 2, 0, c, 2),
                 SIMDNET_ERR_BAD_ARGUMENT, c, "parameter 4 ", "negative M");
    expect_error(simdnet_sgemm(R, N, N, 2, -2, 3, 1, a, 3, b, 2, 0, c, 2),
                 SIMDNET_ERR_BAD_ARGUMENT, c, "parameter 5 ", "negative N");
    expect_error(simdnet_sgemm(R, N, N, 2, 2, -3, 1, a, 3, b, 2, 0, c, 2),
                 SIMDNET_ERR_BAD_ARGUMENT, c, "parameter 6 ", "negative K");
    expect_error(simdnet_sgemm(R, N, N, 2, 2, 3, 1, a, 2, b, 2, 0, c, 2),
                 SIMDNET_ERR_BAD_ARGUMENT, c, "parameter 9 ", "row-major lda < K");
    expect_error(simdnet_sgemm(R, T, N, 2, 2, 3, 1, a, 1, b, 2, 0, c, 2),
                 SIMDNET_ERR_BAD_ARGUMENT, c, "parameter 9 ", "row-major A^T lda < M");
    expect_error(simdnet_sgemm(C, N, N, 2, 2, 3, 1, a, 1, b, 3, 0, c, 2),
                 SIMDNET_ERR_BAD_ARGUMENT, c, "parameter 9 ", "col-major lda < M");
    expect_error(simdnet_sgemm(R, N, N, 2, 2, 3, 1, a, 3, b, 1, 0, c, 2),
                 SIMDNET_ERR_BAD_ARGUMENT, c, "parameter 11 ", "row-major ldb < N");
    expect_error(simdnet_sgemm(C, N, T, 2, 2, 3, 1, a, 2, b, 1, 0, c, 2),
                 SIMDNET_ERR_BAD_ARGUMENT, c, "parameter 11 ", "col-major B^T ldb < N");
    expect_error(simdnet_sgemm(C, N, N, 2, 2, 3, 1, a, 2, b, 2, 0, c, 2),
                 SIMDNET_ERR_BAD_ARGUMENT, c, "parameter 11 ", "col-major ldb < K");
    expect_error(simdnet_sgemm(R, N, N, 2, 2, 3, 1, a, 3, b, 2, 0, c, 1),
                 SIMDNET_ERR_BAD_ARGUMENT, c, "parameter 14 ", "row-major ldc < N");
    expect_error(simdnet_sgemm(C, N, N, 3, 2, 3, 1, a, 3, b, 3, 0, c, 2),
                 SIMDNET_ERR_BAD_ARGUMENT, c, "parameter 14 ", "col-major ldc < M");
    /* ld >= 1 even when the extent is 0, as in the reference BLAS. */
    expect_error(simdnet_sgemm(R, N, N, 0, 2, 0, 1, a, 0, b, 2, 0, c, 2),
                 SIMDNET_ERR_BAD_ARGUMENT, c, "parameter 9 ", "lda = 0");
    expect_error(simdnet_sgemm(R, N, N, 2, 2, 3, 1, NULL, 3, b, 2, 0, c, 2),
                 SIMDNET_ERR_NULL_POINTER, c, "parameter 8 ", "NULL A");
    expect_error(simdnet_sgemm(R, N, N, 2, 2, 3, 1, a, 3, NULL, 2, 0, c, 2),
                 SIMDNET_ERR_NULL_POINTER, c, "parameter 10 ", "NULL B");
    expect_error(simdnet_sgemm(R, N, N, 2, 2, 3, 1, a, 3, b, 2, 0, NULL, 2),
                 SIMDNET_ERR_NULL_POINTER, NULL, "parameter 13 ", "NULL C");
    /* The void CBLAS call reports through simdnet_last_error() and leaves C alone. */
    cblas_sgemm(R, N, N, 2, 2, 3, 1, a, 2, b, 2, 0, c, 2);
    expect_error(SIMDNET_ERR_BAD_ARGUMENT, SIMDNET_ERR_BAD_ARGUMENT, c, "cblas_sgemm: parameter 9",
                 "cblas_sgemm with lda < K");
    cblas_sgemm(R, N, N, 2, 2, 3, 1, a, 3, b, 2, 0, c, 2);
    CHECK(simdnet_last_error() == NULL && c[0] == 0.0f, "good cblas_sgemm after a bad one");
}

/* ---- Inference ----------------------------------------------------------------------------- */

/* A [3, 4, 2] network in network2's JSON format. */
static const int SIZES[3] = {3, 4, 2};
static const double W0[4][3] = {
    {0.5, -1.0, 0.25}, {1.5, 0.0, -0.5}, {-0.75, 0.5, 1.0}, {0.125, 2.0, -1.25}};
static const double B0[4] = {0.1, -0.2, 0.3, 0.0};
static const double W1[2][4] = {{1.0, -1.0, 0.5, 2.0}, {-0.5, 1.5, -2.0, 0.25}};
static const double B1[2] = {-0.3, 0.2};

static int write_model(const char *path) {
    FILE *f = fopen(path, "w");
    if (!f) return 0;
    fprintf(f, "{\"sizes\": [%d, %d, %d], \"weights\": [[", SIZES[0], SIZES[1], SIZES[2]);
    for (int j = 0; j < 4; j++)
        fprintf(f, "%s[%.17g, %.17g, %.17g]", j ? ", " : "", W0[j][0], W0[j][1], W0[j][2]);
    fprintf(f, "], [");
    for (int j = 0; j < 2; j++)
        fprintf(f, "%s[%.17g, %.17g, %.17g, %.17g]", j ? ", " : "", W1[j][0], W1[j][1],
                W1[j][2], W1[j][3]);
    fprintf(f, "]], \"biases\": [[");
    for (int j = 0; j < 4; j++) fprintf(f, "%s[%.17g]", j ? ", " : "", B0[j]);
    fprintf(f, "], [");
    for (int j = 0; j < 2; j++) fprintf(f, "%s[%.17g]", j ? ", " : "", B1[j]);
    fprintf(f, "]], \"cost\": \"CrossEntropyCost\"}");
    return fclose(f) == 0;
}

static double sigmoid(double z) { return 1.0 / (1.0 + exp(-z)); }

static void forward(const float *x, double *out) {
    double h[4];
    for (int j = 0; j < 4; j++) {
        double z = B0[j];
        for (int i = 0; i < 3; i++) z += W0[j][i] * x[i];
        h[j] = sigmoid(z);
    }
    for (int j = 0; j < 2; j++) {
        double z = B1[j];
        for (int i = 0; i < 4; i++) z += W1[j][i] * h[i];
        out[j] = sigmoid(z);
    }
}

static void test_inference(const char *dir) {
    char path[4096], bad_path[4096];
    snprintf(path, sizeof path, "%s/simdnet_capi_test_model.json", dir);
    snprintf(bad_path, sizeof bad_path, "%s/simdnet_capi_test_bad.json", dir);
    CHECK(write_model(path), "cannot write %s", path);

    simdnet_network *net = simdnet_network_load(path);
    CHECK(net != NULL, "load %s: %s", path, simdnet_last_error());
    if (!net) return;
    CHECK(simdnet_network_inputs(net) == 3 && simdnet_network_outputs(net) == 2,
          "sizes %zu -> %zu", simdnet_network_inputs(net), simdnet_network_outputs(net));

    enum { ROWS = 37 };
    float x[ROWS * 3], out[ROWS * 2];
    uint32_t classes[ROWS];
    for (int i = 0; i < ROWS * 3; i++) x[i] = 2.0f * frand();
    int rc = simdnet_network_feedforward(net, x, ROWS, out, ROWS * 2);
    CHECK(rc == SIMDNET_OK, "feedforward: %d %s", rc, simdnet_last_error());
    rc = simdnet_network_predict(net, x, ROWS, classes);
    CHECK(rc == SIMDNET_OK, "predict: %d %s", rc, simdnet_last_error());
    int worst_class = 0;
    double worst = 0.0;
    for (int r = 0; r < ROWS; r++) {
        double want[2];
        forward(x + 3 * r, want);
        for (int j = 0; j < 2; j++) {
            double err = fabs(out[2 * r + j] - want[j]);
            if (err > worst) worst = err;
        }
        /* the class follows simdnet's own outputs (first maximum on ties) */
        uint32_t expect = out[2 * r + 1] > out[2 * r] ? 1u : 0u;
        if (classes[r] != expect) worst_class++;
    }
    CHECK(worst < 1e-5, "feedforward differs from the double forward pass by %g", worst);
    CHECK(worst_class == 0, "%d rows with a class other than the argmax", worst_class);

    /* Errors: wrong out_len, NULL pointers, nothing written. */
    out[0] = -7.0f;
    expect_error(simdnet_network_feedforward(net, x, ROWS, out, ROWS * 2 - 1), SIMDNET_ERR_SIZE,
                 NULL, "out_len", "feedforward with a short out_len");
    CHECK(out[0] == -7.0f, "out written on error");
    expect_error(simdnet_network_feedforward(net, NULL, ROWS, out, ROWS * 2),
                 SIMDNET_ERR_NULL_POINTER, NULL, "x is NULL", "feedforward with NULL x");
    expect_error(simdnet_network_feedforward(NULL, x, ROWS, out, ROWS * 2),
                 SIMDNET_ERR_NULL_POINTER, NULL, "net is NULL", "feedforward with NULL net");
    expect_error(simdnet_network_predict(net, x, ROWS, NULL), SIMDNET_ERR_NULL_POINTER, NULL,
                 "classes is NULL", "predict with NULL classes");
    expect_error(simdnet_network_feedforward(net, x, (size_t)-1, out, 0), SIMDNET_ERR_SIZE, NULL,
                 "too large", "feedforward with an overflowing row count");
    CHECK(simdnet_network_inputs(NULL) == 0 && simdnet_last_error() != NULL, "inputs(NULL)");
    rc = simdnet_network_predict(net, NULL, 0, NULL);
    CHECK(rc == SIMDNET_OK && simdnet_last_error() == NULL, "rows = 0 is a no-op: %d", rc);
    simdnet_network_free(net);
    simdnet_network_free(NULL);

    /* Loading: missing file (I/O), malformed model, NULL path. */
    CHECK(simdnet_network_load("/nonexistent/dir/model.json") == NULL, "missing file loaded");
    CHECK(simdnet_last_error() && strstr(simdnet_last_error(), "/nonexistent/dir/model.json"),
          "missing-file message: %s", simdnet_last_error());
    FILE *f = fopen(bad_path, "w");
    if (f) {
        fputs("{\"sizes\": [3, 2], \"weights\": [[[1, 2, 3]]], \"biases\": [[[0], [0]]], "
              "\"cost\": \"CrossEntropyCost\"}",
              f);
        fclose(f);
    }
    CHECK(simdnet_network_load(bad_path) == NULL, "inconsistent model loaded");
    CHECK(simdnet_last_error() && strstr(simdnet_last_error(), "weights[0] has 1 rows"),
          "bad-model message: %s", simdnet_last_error());
    CHECK(simdnet_network_load(NULL) == NULL && simdnet_last_error(), "NULL path");
    remove(path);
    remove(bad_path);
    printf("inference: %d rows, max |error| vs double forward %.3g\n", ROWS, worst);
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : "/tmp";
    CHECK(simdnet_last_error() == NULL, "no error before any call");
    test_layouts();
    test_special_values();
    test_bad_arguments();
    test_inference(dir);
    printf("%d checks, %d failures\n", checks, failures);
    return failures ? 1 : 0;
}
