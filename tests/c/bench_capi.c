/*
 * Timing of the C ABI from a C program (not a test: scripts/capi-tests.sh only compiles it).
 *
 *   bench_capi                       cblas_sgemm at (100,784,100) and 1024^3, GFLOP/s
 *   bench_capi MODEL.json MNIST_DIR  also: classify the 10,000 MNIST test images with
 *                                    simdnet_network_predict, ms per 10,000 and accuracy
 *
 * Build: cc -O2 -Iinclude tests/c/bench_capi.c -Ltarget/release -Wl,-rpath,$PWD/target/release
 *        -lsimdnet -o bench_capi
 * Medians of 31 timings, each repeating the call for at least 10 ms.
 */
#define _POSIX_C_SOURCE 199309L
#include "simdnet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { ROUNDS = 31 };

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *xs) {
    qsort(xs, ROUNDS, sizeof(double), cmp);
    return xs[ROUNDS / 2];
}

static void bench_sgemm(int m, int k, int n) {
    float *a = malloc((size_t)m * k * sizeof(float));
    float *b = malloc((size_t)k * n * sizeof(float));
    float *c = malloc((size_t)m * n * sizeof(float));
    for (size_t i = 0; i < (size_t)m * k; i++) a[i] = (float)((i * 7) % 17) / 17.0f - 0.5f;
    for (size_t i = 0; i < (size_t)k * n; i++) b[i] = (float)((i * 5) % 13) / 13.0f - 0.5f;
    double secs[ROUNDS];
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1.0f, a, k, b, n, 0.0f, c, n);
    for (int r = 0; r < ROUNDS; r++) {
        double start = now(), elapsed;
        int calls = 0;
        do {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1.0f, a, k, b, n,
                        0.0f, c, n);
            calls++;
        } while ((elapsed = now() - start) < 0.01);
        secs[r] = elapsed / calls;
    }
    double s = median(secs);
    printf("cblas_sgemm (%d,%d,%d) row-major: %.1f GFLOP/s (median %.3f ms)\n", m, k, n,
           2.0 * m * k * n / s / 1e9, s * 1e3);
    free(a);
    free(b);
    free(c);
}

/* Reads an IDX file whole; NULL on error. */
static unsigned char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *data = malloc((size_t)size);
    if (fread(data, 1, (size_t)size, f) != (size_t)size) {
        free(data);
        data = NULL;
    }
    fclose(f);
    *len = (size_t)size;
    return data;
}

static int bench_mnist(const char *model, const char *dir) {
    char path[4096];
    size_t len, llen;
    snprintf(path, sizeof path, "%s/t10k-images-idx3-ubyte", dir);
    unsigned char *raw = read_file(path, &len);
    snprintf(path, sizeof path, "%s/t10k-labels-idx1-ubyte", dir);
    unsigned char *labels = read_file(path, &llen);
    if (!raw || !labels || len < 16 || llen < 8) {
        fprintf(stderr, "cannot read the MNIST test files in %s\n", dir);
        return 1;
    }
    size_t rows = ((size_t)raw[4] << 24) | ((size_t)raw[5] << 16) | ((size_t)raw[6] << 8) | raw[7];
    size_t pixels = len - 16;
    float *x = malloc(pixels * sizeof(float));
    for (size_t i = 0; i < pixels; i++) x[i] = raw[16 + i] / 255.0f;
    uint32_t *classes = malloc(rows * sizeof(uint32_t));

    simdnet_network *net = simdnet_network_load(model);
    if (!net) {
        fprintf(stderr, "%s\n", simdnet_last_error());
        return 1;
    }
    if (simdnet_network_inputs(net) * rows != pixels) {
        fprintf(stderr, "the model's %zu inputs do not fit %zu images of %zu pixels\n",
                simdnet_network_inputs(net), rows, pixels / rows);
        return 1;
    }
    double secs[ROUNDS];
    if (simdnet_network_predict(net, x, rows, classes) != SIMDNET_OK) {
        fprintf(stderr, "%s\n", simdnet_last_error());
        return 1;
    }
    for (int r = 0; r < ROUNDS; r++) {
        double start = now();
        simdnet_network_predict(net, x, rows, classes);
        secs[r] = now() - start;
    }
    size_t correct = 0;
    for (size_t i = 0; i < rows && 8 + i < llen; i++) correct += classes[i] == labels[8 + i];
    double best = secs[0];
    for (int r = 1; r < ROUNDS; r++) best = secs[r] < best ? secs[r] : best;
    printf("simdnet_network_predict, %zu MNIST test images: median %.2f ms, best %.2f ms; "
           "accuracy %zu/%zu\n",
           rows, median(secs) * 1e3, best * 1e3, correct, rows);
    simdnet_network_free(net);
    free(x);
    free(classes);
    free(raw);
    free(labels);
    return 0;
}

int main(int argc, char **argv) {
    bench_sgemm(100, 784, 100);
    bench_sgemm(1024, 1024, 1024);
    if (argc > 2) return bench_mnist(argv[1], argv[2]);
    return 0;
}
