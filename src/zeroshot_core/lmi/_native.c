/*
 * Fused CPU kernel of the LMI map of zeroshot_core.local_mi, forward only (inference).
 *
 * Same quantity as the tensor-op implementation (see local_mi.py): Gaussian (Parzen)
 * bin weights per pixel, joint and marginal histograms of every patch pair, mutual
 * information, maximum over the search offsets.  Two functions:
 *
 *   prepare(image, count, bins, sigma, margin, stride, weights, starts)
 *       For `count` float32 values: the bin weights in a window of
 *       `window = min(bins, 2 margin + 1)` bins around each value's nearest bin
 *       (beyond it they are below 1e-10; they are normalised over the window),
 *       written at their bin positions into rows of `stride >= bins + CHUNK` floats
 *       that are zero elsewhere, and the window's first bin (int32; -1 where the
 *       value is not finite).
 *   forward(x_weights, x_starts, y_weights, y_starts, out, batch, height, width,
 *           bins, patch, radius, window, stride, normalized, first_row, last_row)
 *       The map for output rows [first_row, last_row) of the flattened
 *       (batch * height) rows, from the prepared x (padded by patch // 2) and y
 *       (padded by patch // 2 + radius).  For every pixel and offset the joint
 *       histogram is built CHUNK columns at a time in registers, only over the bins
 *       the windows reach, and c log c is summed with a vectorised polynomial log:
 *       no (2r+1)^2 K^2 values per pixel go through memory, as they do in the
 *       tensor-op version.  The GIL is released: callers may run row ranges on
 *       several threads.
 * Arguments that are arrays are passed as addresses of contiguous buffers; the
 * module constant CHUNK is the vector width rows are padded by.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BINS 64
#define CHUNK 8 /* floats per vector */

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(__APPLE__) && \
    !defined(ZEROSHOT_SINGLE_TARGET) /* -DZEROSHOT_SINGLE_TARGET builds for the compiler's target only */
#define MULTIVERSION __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define MULTIVERSION
#endif
#define INLINE static inline __attribute__((always_inline))

/* GCC/Clang vector extensions: one AVX register, or two SSE ones on older CPUs. */
typedef float vfloat __attribute__((vector_size(CHUNK * sizeof(float))));
typedef int32_t vint __attribute__((vector_size(CHUNK * sizeof(int32_t))));

INLINE vfloat load(const float *address) {
    vfloat value;
    memcpy(&value, address, sizeof value);
    return value;
}

INLINE void store(float *address, vfloat value) { memcpy(address, &value, sizeof value); }

INLINE float lane_sum(vfloat value) {
    float total = 0.0f;
    for (int lane = 0; lane < CHUNK; lane++) total += value[lane];
    return total;
}

INLINE vfloat blend(vint mask, vfloat yes, vfloat no) { return (vfloat)(((vint)yes & mask) | ((vint)no & ~mask)); }

/* Natural log of each lane, for lanes >= 0: within 1e-7 of log for normal floats, and
 * finite (about -88) at 0, so 0 * log(0) gives 0.  The exponent comes from the bits;
 * log(1 + t) for the mantissa 1 + t in [sqrt(1/2), sqrt(2)) is t times a degree-7
 * polynomial (least-squares fit on Chebyshev nodes, max error 8.5e-8 in float32). */
INLINE vfloat log_nonnegative(vfloat value) {
    vint bits = (vint)value;
    vint exponent = ((bits >> 23) & 0xff) - 127;
    vfloat mantissa = (vfloat)((bits & 0x007fffff) | 0x3f800000);
    vint big = mantissa > 1.41421356f; /* -1 where true */
    mantissa = blend(big, mantissa * 0.5f, mantissa);
    exponent -= big;
    vfloat t = mantissa - 1.0f;
    vfloat poly = t * -0.10134057f + 0.16234189f;
    poly = poly * t - 0.17247014f;
    poly = poly * t + 0.19898565f;
    poly = poly * t - 0.24970071f;
    poly = poly * t + 0.33335114f;
    poly = poly * t - 0.50000364f;
    poly = poly * t + 0.99999994f;
    return __builtin_convertvector(exponent, vfloat) * 0.693147181f + t * poly;
}

/* exp of each lane, for lanes <= 0 (below -87 they give exp(-87)): 2^n by the bits
 * times a degree-6 Taylor polynomial of exp(r), |r| <= ln(2) / 2 (relative error < 2e-7). */
INLINE vfloat exp_nonpositive(vfloat value) {
    vfloat z = blend(value > -87.0f, value, value * 0.0f - 87.0f);
    vint n = __builtin_convertvector(z * 1.44269504f - 0.5f, vint); /* rounds towards zero: nearest */
    vfloat nf = __builtin_convertvector(n, vfloat);
    vfloat r = z - nf * 0.693145752f - nf * 1.42860677e-6f;
    vfloat poly = r * (1.0f / 720.0f) + (1.0f / 120.0f);
    poly = poly * r + (1.0f / 24.0f);
    poly = poly * r + (1.0f / 6.0f);
    poly = poly * r + 0.5f;
    poly = poly * r + 1.0f;
    poly = poly * r + 1.0f;
    return poly * (vfloat)((n + 127) << 23);
}

/* sum over lanes and vectors of c log c */
INLINE float sum_c_log_c(const vfloat *cells, int count) {
    vfloat acc0 = {0}, acc1 = {0};
    int k = 0;
    for (; k + 1 < count; k += 2) {
        acc0 += cells[k] * log_nonnegative(cells[k]);
        acc1 += cells[k + 1] * log_nonnegative(cells[k + 1]);
    }
    if (k < count) acc0 += cells[k] * log_nonnegative(cells[k]);
    return lane_sum(acc0 + acc1);
}

typedef struct {
    const float *image;
    float *weights;
    int32_t *starts;
    int64_t count;
    int bins, margin, stride;
    float sigma;
} Binning;

#define NMI_FLOOR 1e-4f /* nats: keep equal to tensor.py's _NMI_FLOOR */

MULTIVERSION
static void prepare_values(const Binning *B) {
    const int K = B->bins, window = K < 2 * B->margin + 1 ? K : 2 * B->margin + 1;
    const float spacing = 2.0f / (float)(K - 1), scale = -0.5f / (B->sigma * B->sigma);
    vfloat lanes;
    for (int lane = 0; lane < CHUNK; lane++) lanes[lane] = (float)lane;
    for (int64_t q = 0; q < B->count; q++) {
        const float value = B->image[q];
        float *row = B->weights + q * B->stride;
        memset(row, 0, sizeof(float) * (size_t)B->stride);
        if (!isfinite(value)) {
            B->starts[q] = -1;
            continue;
        }
        float position = (value + 1.0f) / spacing;
        int nearest = position <= 0.0f ? 0 : position >= (float)(K - 1) ? K - 1 : (int)lrintf(position);
        int start = nearest - B->margin;
        start = start < 0 ? 0 : start > K - window ? K - window : start;
        B->starts[q] = start;
        /* exponents relative to the nearest bin's, so the largest weight is 1 */
        const float offset = value - (-1.0f + (float)nearest * spacing);
        vfloat chunks[MAX_BINS / CHUNK];
        vfloat total = {0}, zero = {0};
        for (int c = 0; c * CHUNK < window; c++) {
            vfloat k = lanes + (float)(c * CHUNK);
            vfloat distance = value - (-1.0f + ((float)start + k) * spacing);
            /* d² - d_nearest² as (d - d_n)(d + d_n): no cancellation for values far from the bins */
            vfloat weight = exp_nonpositive((distance - offset) * (distance + offset) * scale);
            /* lanes past the window are 0 (not weight * 0: beyond the last bin their exponent is
             * positive, the weight inf, and inf * 0 NaN) */
            chunks[c] = blend(k < (float)window, weight, zero);
            total += chunks[c];
        }
        const float inverse = 1.0f / lane_sum(total);
        for (int c = 0; c * CHUNK < window; c++) store(row + start + c * CHUNK, chunks[c] * inverse);
    }
}

typedef struct {
    const float *x_weights, *y_weights;
    const int32_t *x_starts, *y_starts;
    float *out;
    int64_t batch, height, width;
    int bins, patch, radius, window, stride, normalized;
} Problem;

MULTIVERSION
static int forward_rows(const Problem *P, int64_t first_row, int64_t last_row) {
    const int K = P->bins, p = P->patch, r = P->radius, window = P->window, stride = P->stride;
    const int n = p * p, side = 2 * r + 1;
    const int64_t H = P->height, W = P->width;
    const int64_t x_cols = W + p - 1, x_rows = H + p - 1;
    const int64_t y_cols = x_cols + 2 * r, y_rows = x_rows + 2 * r;
    const float log_n = logf((float)n), inv_n = 1.0f / (float)n;
    float *x_by_row = malloc(sizeof(float) * (size_t)K * (size_t)n); /* [bin][sample] weights of x */
    const float **x_weights = malloc(sizeof(float *) * (size_t)n), **y_weights = malloc(sizeof(float *) * (size_t)n);
    if (!x_by_row || !x_weights || !y_weights) {
        free(x_by_row); free((void *)x_weights); free((void *)y_weights);
        return -1;
    }
    vfloat cells[MAX_BINS * (MAX_BINS / CHUNK + 1)]; /* one joint histogram, in CHUNK-wide pieces */
    float marginal[MAX_BINS + CHUNK] = {0};

    for (int64_t t = first_row; t < last_row; t++) {
        const int64_t b = t / H, i = t % H;
        for (int64_t j = 0; j < W; j++) {
            float *result = P->out + (b * H + i) * W + j;
            int finite = 1, row0 = K, row1 = 0;
            for (int s = 0; s < n; s++) {
                const int64_t q = (b * x_rows + i + s / p) * x_cols + j + s % p;
                const int start = P->x_starts[q];
                finite &= start >= 0;
                x_weights[s] = P->x_weights + q * stride;
                if (start < row0) row0 = start;
                if (start + window > row1) row1 = start + window;
            }
            if (!finite) {
                *result = NAN;
                continue;
            }
            for (int a = row0; a < row1; a++) {
                float sum = 0.0f;
                for (int s = 0; s < n; s++) sum += x_by_row[a * n + s] = x_weights[s][a];
                marginal[a] = sum;
            }
            int filled = 0;
            for (int a = row0; a < row1; a += CHUNK) cells[filled++] = load(marginal + a);
            const float hx = log_n - sum_c_log_c(cells, filled) * inv_n;
            memset(marginal + row0, 0, sizeof(float) * (size_t)(row1 - row0));

            float best = -INFINITY;
            for (int d = 0; d < side * side && finite; d++) {
                const int dy = d / side, dx = d % side;
                int col0 = K, col1 = 0;
                for (int s = 0; s < n; s++) {
                    const int64_t q = (b * y_rows + i + dy + s / p) * y_cols + j + dx + s % p;
                    const int start = P->y_starts[q];
                    finite &= start >= 0;
                    y_weights[s] = P->y_weights + q * stride;
                    if (start < col0) col0 = start;
                    if (start + window > col1) col1 = start + window;
                }
                if (!finite) break;
                /* marginal of y, then the joint histogram, CHUNK columns at a time */
                filled = 0;
                for (int col = col0; col < col1; col += CHUNK) {
                    vfloat sum = {0};
                    for (int s = 0; s < n; s++) sum += load(y_weights[s] + col);
                    cells[filled++] = sum;
                }
                const float hy = log_n - sum_c_log_c(cells, filled) * inv_n;
                filled = 0;
                for (int col = col0; col < col1; col += CHUNK) {
                    int a = row0;
                    for (; a + 3 < row1; a += 4) { /* four rows at once share the loads of y */
                        const float *u = x_by_row + a * n;
                        vfloat sum0 = {0}, sum1 = {0}, sum2 = {0}, sum3 = {0};
                        for (int s = 0; s < n; s++) {
                            const vfloat y = load(y_weights[s] + col);
                            sum0 += u[s] * y;
                            sum1 += u[n + s] * y;
                            sum2 += u[2 * n + s] * y;
                            sum3 += u[3 * n + s] * y;
                        }
                        cells[filled++] = sum0;
                        cells[filled++] = sum1;
                        cells[filled++] = sum2;
                        cells[filled++] = sum3;
                    }
                    for (; a < row1; a++) {
                        const float *u = x_by_row + a * n;
                        vfloat sum = {0};
                        for (int s = 0; s < n; s++) sum += u[s] * load(y_weights[s] + col);
                        cells[filled++] = sum;
                    }
                }
                const float h_joint = log_n - sum_c_log_c(cells, filled) * inv_n;
                float mi = hx + hy - h_joint;
                if (P->normalized) {
                    const float denominator = hx + hy;
                    /* patches with (almost) no entropy carry no information: 0, not noise / noise */
                    mi = denominator > NMI_FLOOR ? fminf(fmaxf(2.0f * mi / denominator, 0.0f), 1.0f) : 0.0f;
                }
                if (mi > best) best = mi;
            }
            *result = finite ? best : NAN;
        }
    }
    free(x_by_row); free((void *)x_weights); free((void *)y_weights);
    return 0;
}

static PyObject *prepare(PyObject *self, PyObject *args) {
    (void)self;
    unsigned long long image, weights, starts;
    long long count;
    int bins, margin, stride;
    float sigma;
    if (!PyArg_ParseTuple(args, "KLifiiKK", &image, &count, &bins, &sigma, &margin, &stride, &weights, &starts))
        return NULL;
    if (count < 0 || bins < 2 || bins > MAX_BINS || margin < 0 || stride < bins + CHUNK || !(sigma > 0.0f)) {
        PyErr_SetString(PyExc_ValueError, "LMI native prepare: arguments out of range");
        return NULL;
    }
    Binning binning = {(const float *)(uintptr_t)image, (float *)(uintptr_t)weights, (int32_t *)(uintptr_t)starts,
                       count, bins, margin, stride, sigma};
    Py_BEGIN_ALLOW_THREADS
    prepare_values(&binning);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

static PyObject *forward(PyObject *self, PyObject *args) {
    (void)self;
    unsigned long long addresses[5];
    long long batch, height, width, first_row, last_row;
    int bins, patch, radius, window, stride, normalized;
    if (!PyArg_ParseTuple(args, "KKKKKLLLiiiiipLL", &addresses[0], &addresses[1], &addresses[2], &addresses[3],
                          &addresses[4], &batch, &height, &width, &bins, &patch, &radius, &window, &stride,
                          &normalized, &first_row, &last_row))
        return NULL;
    if (bins < 2 || bins > MAX_BINS || patch < 1 || patch % 2 == 0 || patch > 31 || radius < 0 || radius > 8 ||
        window < 1 || window > bins || stride < bins + CHUNK || batch < 0 || height < 1 || width < 1 ||
        first_row < 0 || last_row > batch * height || first_row > last_row) {
        PyErr_SetString(PyExc_ValueError, "LMI native forward: arguments out of range");
        return NULL;
    }
    Problem problem = {
        .x_weights = (const float *)(uintptr_t)addresses[0],
        .x_starts = (const int32_t *)(uintptr_t)addresses[1],
        .y_weights = (const float *)(uintptr_t)addresses[2],
        .y_starts = (const int32_t *)(uintptr_t)addresses[3],
        .out = (float *)(uintptr_t)addresses[4],
        .batch = batch, .height = height, .width = width,
        .bins = bins, .patch = patch, .radius = radius, .window = window, .stride = stride,
        .normalized = normalized,
    };
    int status;
    Py_BEGIN_ALLOW_THREADS
    status = forward_rows(&problem, first_row, last_row);
    Py_END_ALLOW_THREADS
    if (status != 0) return PyErr_NoMemory();
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"prepare", prepare, METH_VARARGS, "Windowed Gaussian bin weights of float32 values."},
    {"forward", forward, METH_VARARGS, "LMI map rows [first_row, last_row) from prepared weights."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "zeroshot_core.lmi._native", "Fused CPU kernel of the LMI map.",
                                    -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__native(void) {
    PyObject *created = PyModule_Create(&module);
    if (created && PyModule_AddIntConstant(created, "CHUNK", CHUNK) < 0) {
        Py_DECREF(created);
        return NULL;
    }
    return created;
}
