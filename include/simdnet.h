/*
 * simdnet.h: the C ABI of simdnet (the Rust crate's `capi` feature).
 *
 * Build the libraries with
 *
 *     cargo build --release --features capi
 *
 * which writes target/release/libsimdnet.so (shared) and target/release/libsimdnet.a (static).
 * Link with
 *
 *     cc prog.c -Iinclude -Ltarget/release -lsimdnet                   (shared; set the rpath
 *                                                                       or LD_LIBRARY_PATH)
 *     cc prog.c -Iinclude target/release/libsimdnet.a -lpthread -ldl -lm    (static)
 *
 * Errors: no function lets a Rust panic cross into C. Every function that can fail records a
 * message that simdnet_last_error() returns (thread-local), and every call that succeeds
 * clears it, so even the void cblas_sgemm can be checked:
 *
 *     cblas_sgemm(...);
 *     if (simdnet_last_error()) { ... the call was rejected and C is untouched ... }
 *
 * Functions returning int return SIMDNET_OK (0) or one of the SIMDNET_ERR_* codes.
 *
 * Threads: every function may be called from any thread; a loaded network is immutable and
 * may be run by several threads at once. Large products and batches use simdnet's own thread
 * pool (one thread per CPU; RAYON_NUM_THREADS sets the count). SIMDNET_ISA=scalar|avx2|
 * avx512|neon forces an instruction set (an invalid value makes calls fail with
 * SIMDNET_ERR_ISA).
 */
#ifndef SIMDNET_H
#define SIMDNET_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Status codes ------------------------------------------------------------------------ */

/** Success. */
#define SIMDNET_OK 0
/** A pointer the call must dereference is NULL. */
#define SIMDNET_ERR_NULL_POINTER 1
/** An argument is out of its domain: an unknown layout or transpose, a negative dimension, a
 *  leading dimension below its minimum. */
#define SIMDNET_ERR_BAD_ARGUMENT 2
/** A buffer length does not match the shape the call needs, or a size overflows. */
#define SIMDNET_ERR_SIZE 3
/** A file cannot be read. */
#define SIMDNET_ERR_IO 4
/** A file is not a usable network2 JSON model. */
#define SIMDNET_ERR_MODEL 5
/** SIMDNET_ISA names an unknown instruction set or one this CPU lacks. */
#define SIMDNET_ERR_ISA 6
/** A bug in simdnet (a Rust panic, caught at the boundary). */
#define SIMDNET_ERR_INTERNAL 7

/**
 * The message of the last call on this thread that failed, or NULL if the last call into
 * simdnet on this thread succeeded (or none was made). UTF-8, owned by simdnet, valid until
 * the next call into simdnet on this thread: copy it to keep it. Messages name the function
 * and, for the GEMM, the offending parameter by its 1-based position (as BLAS's xerbla).
 */
const char *simdnet_last_error(void);

/* ---- GEMM -------------------------------------------------------------------------------- */

/* The CBLAS enumerations, with the standard values. Skipped if a cblas.h was included first
 * (both define the same values), or if SIMDNET_NO_CBLAS_ENUMS is defined. */
#if !defined(CBLAS_H) && !defined(SIMDNET_NO_CBLAS_ENUMS)
typedef enum CBLAS_LAYOUT { CblasRowMajor = 101, CblasColMajor = 102 } CBLAS_LAYOUT;
typedef enum CBLAS_TRANSPOSE {
    CblasNoTrans = 111,
    CblasTrans = 112,
    CblasConjTrans = 113
} CBLAS_TRANSPOSE;
#ifndef CBLAS_ORDER
#define CBLAS_ORDER CBLAS_LAYOUT
#endif
#endif

/**
 * C <- alpha * op(A) * op(B) + beta * C, the standard CBLAS sgemm (a drop-in: link simdnet
 * instead of a BLAS).
 *
 * op(A) is M x K, op(B) is K x N, C is M x N, all stored in `layout` (CblasRowMajor or
 * CblasColMajor) with leading dimensions lda, ldb, ldc. TransA/TransB: CblasNoTrans,
 * CblasTrans, or CblasConjTrans (the same as CblasTrans for real numbers). The leading
 * dimensions must be at least max(1, the stored matrix's contiguous extent): for row-major,
 * lda >= max(1, TransA ? M : K), ldb >= max(1, TransB ? K : N), ldc >= max(1, N); for
 * column-major, lda >= max(1, TransA ? K : M), ldb >= max(1, TransB ? N : K),
 * ldc >= max(1, M).
 *
 * When beta == 0, C is written without being read (NaN in C does not propagate). When
 * alpha == 0 or K == 0, A and B are not read (they may be NULL) and C becomes beta * C.
 * Once the arguments are checked, M == 0 or N == 0 returns without touching any matrix (all
 * three may then be NULL). Operands are read through their strides in place, never
 * copied; results do not depend on the number of threads.
 *
 * Bad arguments (an unknown enum value, a negative dimension, a leading dimension too small,
 * a NULL pointer that would be dereferenced) leave C untouched and set simdnet_last_error();
 * a successful call clears it. simdnet_sgemm is the same call returning a status code.
 * C must not overlap A or B.
 */
void cblas_sgemm(CBLAS_LAYOUT layout, CBLAS_TRANSPOSE TransA, CBLAS_TRANSPOSE TransB,
                 int M, int N, int K, float alpha, const float *A, int lda, const float *B,
                 int ldb, float beta, float *C, int ldc);

/**
 * cblas_sgemm returning SIMDNET_OK, SIMDNET_ERR_BAD_ARGUMENT, SIMDNET_ERR_NULL_POINTER,
 * SIMDNET_ERR_ISA or SIMDNET_ERR_INTERNAL. On error C is untouched.
 */
int simdnet_sgemm(CBLAS_LAYOUT layout, CBLAS_TRANSPOSE TransA, CBLAS_TRANSPOSE TransB, int M,
                  int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
                  float beta, float *C, int ldc);

/* ---- Inference --------------------------------------------------------------------------- */

/** A loaded network (opaque). Immutable once loaded: safe to share between threads. */
typedef struct simdnet_network simdnet_network;

/**
 * Loads a network saved in network2.py's JSON format (by network2.py's save, simdnet's
 * Network::save, or `train --save`). Returns NULL on error (SIMDNET_ERR_NULL_POINTER,
 * _IO, _MODEL; see simdnet_last_error()). Free with simdnet_network_free.
 */
simdnet_network *simdnet_network_load(const char *path);

/** Frees a network; NULL is ignored. The handle must not be used afterwards. */
void simdnet_network_free(simdnet_network *net);

/** The size of the input layer (floats per input row); 0 if net is NULL. */
size_t simdnet_network_inputs(const simdnet_network *net);

/** The size of the output layer (floats per output row, the number of classes); 0 if net is
 *  NULL. */
size_t simdnet_network_outputs(const simdnet_network *net);

/**
 * Feeds `rows` inputs forward. x: row-major rows x inputs floats. out: receives row-major
 * rows x outputs sigmoid activations; out_len must equal rows * outputs exactly
 * (SIMDNET_ERR_SIZE otherwise). Nothing is written on error. rows == 0 does nothing.
 */
int simdnet_network_feedforward(const simdnet_network *net, const float *x, size_t rows,
                                float *out, size_t out_len);

/**
 * Classifies `rows` inputs (x: row-major rows x inputs floats): classes[i] receives the index
 * of the most active output neuron of row i, the first one on ties (numpy's argmax). classes
 * must hold rows entries. Nothing is written on error. rows == 0 does nothing.
 */
int simdnet_network_predict(const simdnet_network *net, const float *x, size_t rows,
                            uint32_t *classes);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* SIMDNET_H */
