// Fused CPU kernels for the recommender's sparse training step, the trainer's dense update and the samplers'
// uniform stream (see recsys_rbm/accel/native/__init__.py).
//
// Each row kernel does in one pass over a batch's entries what the torch path does with a gather, a
// product and a scatter, without forming the (entries, width) intermediates:
//
//   block_products: out[e, k] = table[base[e] + k] . vectors[cases[e]]              (e < n, k < block)
//                   (+ sum_c offset_coefs[c] * offsets[base[e] + k, c], when offsets are given)
//   add_rows:       storage[rows[i], c] += coefs[c] * weights[i] * per_case[cases[i]]  (i < n, c < n_coords)
//   group_order:    the positions 0..n-1 sorted by key, stably (to visit the entries of one unit together)
//   sample_levels:  out[r] = the level k whose cumulative softmax(logits[r]) first exceeds uniforms[r]
//   sampled_blocks: block_products, a level drawn per entry from its products, and the drawn rows summed per case
//   momentum_step:  v = m * v + lr * g - lr * decay * theta, theta += v (the trainer's dense update, one pass)
//   catch_up:       (theta, v)[r] = M^(step - clocks[r]) (theta, v)[r], clocks[r] = step (lazy momentum's rows)
//   pcg64_uniforms: uniforms of NumPy's PCG64 stream from a given state, several threads at once
//
// Arrays arrive as data pointers of contiguous float32 or float64 arrays and int64 indices; every
// index is checked before anything is read or written. The GIL is released while a kernel runs;
// OpenMP (the runtime torch has already loaded) splits the work, and each thread's share runs in a
// function cloned for AVX-512, AVX2 and plain x86-64, picked once for the CPU at load time.

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define RECSYS_RBM_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define RECSYS_RBM_CLONES
#endif
#define RECSYS_RBM_INLINE inline __attribute__((always_inline))

namespace {

// --- block_products ---------------------------------------------------------------------------
// The `Block` products of one entry: each chunk of its vector is loaded once and multiplied into
// every row of the block, with a vector of partial sums per row, so neither the loads nor the adds
// wait on one another.
template <typename T, int64_t Block>
RECSYS_RBM_INLINE void products_of(const T* rows, const T* vector, int64_t width, T* out) {
    constexpr int64_t lanes = 64 / sizeof(T);
    T partial[Block][lanes] = {};
    int64_t j = 0;
    for (; j + lanes <= width; j += lanes)
        for (int64_t k = 0; k < Block; ++k)
#pragma omp simd
            for (int64_t l = 0; l < lanes; ++l) partial[k][l] += rows[k * width + j + l] * vector[j + l];
    for (int64_t k = 0; k < Block; ++k) {
        T total = 0;
        for (int64_t l = 0; l < lanes; ++l) total += partial[k][l];
        for (int64_t rest = j; rest < width; ++rest) total += rows[k * width + rest] * vector[rest];
        out[k] = total;
    }
}

template <typename T, int64_t Block>
RECSYS_RBM_INLINE void products_over(const T* table, int64_t width, const int64_t* base, const int64_t* cases,
                                     const T* vectors, const int64_t* order, int64_t first, int64_t last,
                                     int64_t limit, T* out) {
    auto base_at = [&](int64_t i) { return base[order ? order[i] : i]; };
    for (int64_t i = first; i < last; ++i) {
        const int64_t e = order ? order[i] : i;
        if (i == first || base_at(i - 1) != base[e]) {  // a new block: ask for the next different one now
            int64_t next = i + 1;
            while (next < limit && base_at(next) == base[e]) ++next;
            if (next < limit) {
                const char* rows = reinterpret_cast<const char*>(table + base_at(next) * width);
                for (int64_t byte = 0; byte < Block * width * int64_t(sizeof(T)); byte += 64)
                    __builtin_prefetch(rows + byte);
            }
        }
        products_of<T, Block>(table + base[e] * width, vectors + cases[e] * width, width, out + e * Block);
    }
}

// The entries order[first..last-1] (first..last-1 without an order). Blocks of 2 to 10 rows (a rating block's
// levels) get unrolled loops.
template <typename T>
RECSYS_RBM_INLINE void products_range(const T* table, int64_t width, const int64_t* base, const int64_t* cases,
                                      const T* vectors, const int64_t* order, int64_t block, int64_t first,
                                      int64_t last, int64_t limit, T* out) {
    switch (block) {
        case 2: return products_over<T, 2>(table, width, base, cases, vectors, order, first, last, limit, out);
        case 3: return products_over<T, 3>(table, width, base, cases, vectors, order, first, last, limit, out);
        case 4: return products_over<T, 4>(table, width, base, cases, vectors, order, first, last, limit, out);
        case 5: return products_over<T, 5>(table, width, base, cases, vectors, order, first, last, limit, out);
        case 6: return products_over<T, 6>(table, width, base, cases, vectors, order, first, last, limit, out);
        case 7: return products_over<T, 7>(table, width, base, cases, vectors, order, first, last, limit, out);
        case 8: return products_over<T, 8>(table, width, base, cases, vectors, order, first, last, limit, out);
        case 9: return products_over<T, 9>(table, width, base, cases, vectors, order, first, last, limit, out);
        case 10: return products_over<T, 10>(table, width, base, cases, vectors, order, first, last, limit, out);
    }
    for (int64_t i = first; i < last; ++i) {
        const int64_t e = order ? order[i] : i;
        for (int64_t k = 0; k < block; ++k)
            products_of<T, 1>(table + (base[e] + k) * width, vectors + cases[e] * width, width, out + e * block + k);
    }
}

RECSYS_RBM_CLONES void products_range_float(const float* table, int64_t width, const int64_t* base,
                                            const int64_t* cases, const float* vectors, const int64_t* order,
                                            int64_t block, int64_t first, int64_t last, int64_t limit, float* out) {
    products_range(table, width, base, cases, vectors, order, block, first, last, limit, out);
}

RECSYS_RBM_CLONES void products_range_double(const double* table, int64_t width, const int64_t* base,
                                             const int64_t* cases, const double* vectors, const int64_t* order,
                                             int64_t block, int64_t first, int64_t last, int64_t limit,
                                             double* out) {
    products_range(table, width, base, cases, vectors, order, block, first, last, limit, out);
}

// The offsets' rows of the same entries as products_range, added to their products.
template <typename T>
void add_offsets(const T* offsets, int64_t n_coords, const double* coefs, const int64_t* base, const int64_t* order,
                 int64_t block, int64_t first, int64_t last, T* out) {
    for (int64_t i = first; i < last; ++i)
        for (int64_t k = 0, e = order ? order[i] : i; k < block; ++k) {
            const T* row = offsets + (base[e] + k) * n_coords;
            T total = 0;
            for (int64_t c = 0; c < n_coords; ++c) total += static_cast<T>(coefs[c]) * row[c];
            out[e * block + k] += total;
        }
}

// --- add_rows ---------------------------------------------------------------------------------
// Thread `owner` of `n_owners` adds the entries whose row r has (r / group) % n_owners == owner (a group
// of rows, e.g. a unit's levels, stays with one thread): no two threads write one row, and repeated rows add
// up in the visiting order (`order`, or entry order), whatever the number of threads.
template <typename T>
RECSYS_RBM_INLINE void add_owned(T* storage, int64_t n_coords, int64_t width, const int64_t* rows,
                                 const int64_t* cases, const T* per_case, const T* weights, const double* coefs,
                                 const int64_t* order, int64_t group, int64_t n, int64_t owner, int64_t n_owners) {
    // With powers of two (the usual case) the share of a row is a shift and a mask, not two divisions.
    const bool powers_of_two = (group & (group - 1)) == 0 && (n_owners & (n_owners - 1)) == 0;
    const int shift = __builtin_ctzll(static_cast<unsigned long long>(group));
    for (int64_t j = 0; j < n; ++j) {
        const int64_t i = order ? order[j] : j;
        const int64_t row = rows[i];
        const int64_t share = powers_of_two ? (row >> shift) & (n_owners - 1) : (row / group) % n_owners;
        if (share != owner) continue;
        const T* source = per_case + cases[i] * width;
        const T scale = weights ? weights[i] : T(1);
        for (int64_t c = 0; c < n_coords; ++c) {
            const T factor = static_cast<T>(coefs[c]) * scale;
            T* target = storage + (row * n_coords + c) * width;
#pragma omp simd
            for (int64_t j = 0; j < width; ++j) target[j] += factor * source[j];
        }
    }
}

RECSYS_RBM_CLONES void add_owned_float(float* storage, int64_t n_coords, int64_t width, const int64_t* rows,
                                       const int64_t* cases, const float* per_case, const float* weights,
                                       const double* coefs, const int64_t* order, int64_t group, int64_t n,
                                       int64_t owner, int64_t n_owners) {
    add_owned(storage, n_coords, width, rows, cases, per_case, weights, coefs, order, group, n, owner, n_owners);
}

RECSYS_RBM_CLONES void add_owned_double(double* storage, int64_t n_coords, int64_t width, const int64_t* rows,
                                        const int64_t* cases, const double* per_case, const double* weights,
                                        const double* coefs, const int64_t* order, int64_t group, int64_t n,
                                        int64_t owner, int64_t n_owners) {
    add_owned(storage, n_coords, width, rows, cases, per_case, weights, coefs, order, group, n, owner, n_owners);
}

// --- group_order ------------------------------------------------------------------------------
// A stable counting sort: the positions 0..n-1 ordered by their key (keys in 0..n_keys-1).
void group_order(const int64_t* keys, int64_t n, int64_t n_keys, int64_t* order) {
    std::vector<int64_t> start(n_keys + 1, 0);
    for (int64_t i = 0; i < n; ++i) ++start[keys[i] + 1];
    for (int64_t key = 0; key < n_keys; ++key) start[key + 1] += start[key];
    for (int64_t i = 0; i < n; ++i) order[start[keys[i]]++] = i;
}

// --- sample_levels ----------------------------------------------------------------------------------
// exp(x) for x <= 0, in a form the compiler vectorises: x = n ln 2 + r with |r| <= ln 2 / 2, exp(r) by its
// Taylor polynomial (degree 7 for float, 13 for double: within a few units in the last place), times 2^n
// built in the exponent bits; 0 below the smallest normal number.
template <typename T>
RECSYS_RBM_INLINE T exp_nonpositive(T x);

template <>
RECSYS_RBM_INLINE float exp_nonpositive(float x) {
    const float shift = 12582912.0f;  // 1.5 · 2^23: adding it rounds to an integer, in vector registers too
    const float n = (x * 1.44269504088896341f + shift) - shift;
    const float r = (x - n * 0.693145751953125f) - n * 1.42860682030941723e-6f;
    float p = 1.0f / 5040;
    for (float c : {1.0f / 720, 1.0f / 120, 1.0f / 24, 1.0f / 6, 0.5f, 1.0f, 1.0f}) p = p * r + c;
    const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
    float scale;
    std::memcpy(&scale, &bits, sizeof scale);
    return x < -87.0f ? 0.0f : p * scale;  // (x below -87 would round n under the smallest exponent)
}

template <>
RECSYS_RBM_INLINE double exp_nonpositive(double x) {
    const double shift = 6755399441055744.0;  // 1.5 · 2^52
    const double n = (x * 1.4426950408889634 + shift) - shift;
    const double r = (x - n * 0.693147180369123816490) - n * 1.90821492927058770002e-10;
    double p = 1.0 / 6227020800.0;
    for (double c : {1.0 / 479001600.0, 1.0 / 39916800.0, 1.0 / 3628800.0, 1.0 / 362880.0, 1.0 / 40320.0,
                     1.0 / 5040.0, 1.0 / 720.0, 1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0})
        p = p * r + c;
    const int64_t bits = (static_cast<int64_t>(n) + 1023) << 52;
    double scale;
    std::memcpy(&scale, &bits, sizeof scale);
    return x < -708.0 ? 0.0 : p * scale;
}

// The inverse CDF of each row's softmax, as recsys_rbm.rbm.units.sample_levels computes it: unnormalised
// cumulative weights exp(logit - max), compared with the uniform scaled by their total. One row at a time
// is a chain of dependent steps (the max, the running sum), so rows are taken a vector's width at a time,
// one row per lane, where K is known at compile time.
template <typename T>
RECSYS_RBM_INLINE int64_t sample_row(const T* row, int64_t levels, T uniform) {
    T top = row[0];
    for (int64_t k = 1; k < levels; ++k) top = row[k] > top ? row[k] : top;
    T cumulative[64];
    T total = 0;
    for (int64_t k = 0; k < levels; ++k) cumulative[k] = total += exp_nonpositive<T>(row[k] - top);
    const T draw = uniform * total;
    int64_t level = 0;
    for (int64_t k = 0; k + 1 < levels; ++k) level += cumulative[k] < draw;
    return level;
}

template <typename T, int64_t Levels>
RECSYS_RBM_INLINE void sample_lanes(const T* logits, int64_t first, int64_t last, const T* uniforms, int64_t* out) {
    constexpr int64_t lanes = 64 / sizeof(T);
    int64_t r = first;
    for (; r + lanes <= last; r += lanes) {
        T cumulative[Levels][lanes], top[lanes], total[lanes], draw[lanes];
        int64_t level[lanes];
        for (int64_t k = 0; k < Levels; ++k)
#pragma omp simd
            for (int64_t l = 0; l < lanes; ++l) cumulative[k][l] = logits[(r + l) * Levels + k];
#pragma omp simd
        for (int64_t l = 0; l < lanes; ++l) top[l] = cumulative[0][l];
        for (int64_t k = 1; k < Levels; ++k)
#pragma omp simd
            for (int64_t l = 0; l < lanes; ++l) top[l] = cumulative[k][l] > top[l] ? cumulative[k][l] : top[l];
#pragma omp simd
        for (int64_t l = 0; l < lanes; ++l) total[l] = 0;
        for (int64_t k = 0; k < Levels; ++k)
#pragma omp simd
            for (int64_t l = 0; l < lanes; ++l)
                cumulative[k][l] = total[l] += exp_nonpositive<T>(cumulative[k][l] - top[l]);
#pragma omp simd
        for (int64_t l = 0; l < lanes; ++l) {
            draw[l] = uniforms[r + l] * total[l];
            level[l] = 0;
        }
        for (int64_t k = 0; k + 1 < Levels; ++k)
#pragma omp simd
            for (int64_t l = 0; l < lanes; ++l) level[l] += cumulative[k][l] < draw[l];
        for (int64_t l = 0; l < lanes; ++l) out[r + l] = level[l];
    }
    for (; r < last; ++r) out[r] = sample_row(logits + r * Levels, Levels, uniforms[r]);
}

template <typename T>
RECSYS_RBM_INLINE void sample_rows(const T* logits, int64_t first, int64_t last, int64_t levels, const T* uniforms,
                                   int64_t* out) {
    switch (levels) {
        case 2: return sample_lanes<T, 2>(logits, first, last, uniforms, out);
        case 3: return sample_lanes<T, 3>(logits, first, last, uniforms, out);
        case 4: return sample_lanes<T, 4>(logits, first, last, uniforms, out);
        case 5: return sample_lanes<T, 5>(logits, first, last, uniforms, out);
        case 6: return sample_lanes<T, 6>(logits, first, last, uniforms, out);
        case 7: return sample_lanes<T, 7>(logits, first, last, uniforms, out);
        case 8: return sample_lanes<T, 8>(logits, first, last, uniforms, out);
        case 9: return sample_lanes<T, 9>(logits, first, last, uniforms, out);
        case 10: return sample_lanes<T, 10>(logits, first, last, uniforms, out);
    }
    for (int64_t r = first; r < last; ++r) out[r] = sample_row(logits + r * levels, levels, uniforms[r]);
}

RECSYS_RBM_CLONES void sample_rows_float(const float* logits, int64_t first, int64_t last, int64_t levels,
                                         const float* uniforms, int64_t* out) {
    sample_rows(logits, first, last, levels, uniforms, out);
}

RECSYS_RBM_CLONES void sample_rows_double(const double* logits, int64_t first, int64_t last, int64_t levels,
                                          const double* uniforms, int64_t* out) {
    sample_rows(logits, first, last, levels, uniforms, out);
}

// --- sampled_blocks -------------------------------------------------------------------------------
// block_products, then each entry's level drawn from softmax(out[e]) (with uniforms[e]), and the drawn row's
// current value, sum_c coefs[c] * table[base[e] + level, c-th H of the row], added to its case's sum: the
// draw of a rated entry and the next hidden input's share of it, while the entry's rows are still in cache.
template <typename T>
RECSYS_RBM_INLINE void add_drawn_rows(const T* table, int64_t n_coords, int64_t hidden, const double* coefs,
                                      const int64_t* base, const int64_t* cases, const int64_t* entries,
                                      const int64_t* drawn, int64_t count, T* sums) {
    for (int64_t j = 0; j < count; ++j) {
        const T* row = table + (base[entries[j]] + drawn[j]) * n_coords * hidden;
        T* target = sums + cases[entries[j]] * hidden;
        for (int64_t c = 0; c < n_coords; ++c) {
            const T factor = static_cast<T>(coefs[c]);
#pragma omp simd
            for (int64_t k = 0; k < hidden; ++k) target[k] += factor * row[c * hidden + k];
        }
    }
}

RECSYS_RBM_CLONES void add_drawn_rows_float(const float* table, int64_t n_coords, int64_t hidden, const double* coefs,
                                            const int64_t* base, const int64_t* cases, const int64_t* entries,
                                            const int64_t* drawn, int64_t count, float* sums) {
    add_drawn_rows(table, n_coords, hidden, coefs, base, cases, entries, drawn, count, sums);
}

RECSYS_RBM_CLONES void add_drawn_rows_double(const double* table, int64_t n_coords, int64_t hidden,
                                             const double* coefs, const int64_t* base, const int64_t* cases,
                                             const int64_t* entries, const int64_t* drawn, int64_t count,
                                             double* sums) {
    add_drawn_rows(table, n_coords, hidden, coefs, base, cases, entries, drawn, count, sums);
}

void products_range_of(const float* table, int64_t width, const int64_t* base, const int64_t* cases,
                       const float* vectors, const int64_t* order, int64_t block, int64_t first, int64_t last,
                       int64_t limit, float* out) {
    products_range_float(table, width, base, cases, vectors, order, block, first, last, limit, out);
}
void products_range_of(const double* table, int64_t width, const int64_t* base, const int64_t* cases,
                       const double* vectors, const int64_t* order, int64_t block, int64_t first, int64_t last,
                       int64_t limit, double* out) {
    products_range_double(table, width, base, cases, vectors, order, block, first, last, limit, out);
}
void sample_rows_of(const float* logits, int64_t first, int64_t last, int64_t levels, const float* uniforms,
                    int64_t* out) {
    sample_rows_float(logits, first, last, levels, uniforms, out);
}
void sample_rows_of(const double* logits, int64_t first, int64_t last, int64_t levels, const double* uniforms,
                    int64_t* out) {
    sample_rows_double(logits, first, last, levels, uniforms, out);
}
void add_drawn_rows_of(const float* table, int64_t n_coords, int64_t hidden, const double* coefs, const int64_t* base,
                       const int64_t* cases, const int64_t* entries, const int64_t* drawn, int64_t count,
                       float* sums) {
    add_drawn_rows_float(table, n_coords, hidden, coefs, base, cases, entries, drawn, count, sums);
}
void add_drawn_rows_of(const double* table, int64_t n_coords, int64_t hidden, const double* coefs,
                       const int64_t* base, const int64_t* cases, const int64_t* entries, const int64_t* drawn,
                       int64_t count, double* sums) {
    add_drawn_rows_double(table, n_coords, hidden, coefs, base, cases, entries, drawn, count, sums);
}

int thread_number();
int thread_count();

// Each thread sums into its own (n_cases, hidden) slice; the slices are added up in thread order at the end.
template <typename T>
void sampled_blocks(const T* table, int64_t n_coords, int64_t hidden, const double* row_coefs, const int64_t* base,
                    const int64_t* cases, const T* vectors, int64_t n_cases, const int64_t* order, int64_t n,
                    int64_t block, const T* offsets, int64_t n_offset_coords, const double* offset_coefs,
                    const T* uniforms, T* out, int64_t* levels, T* sums, int n_threads) {
    constexpr int64_t chunk = 16;  // entries whose K rows stay in cache from their products to their draw
    const int64_t width = n_coords * hidden, slice = n_cases * hidden;
    std::vector<T> partial(static_cast<size_t>(n_threads) * slice, T(0));
#pragma omp parallel num_threads(n_threads)
    {
        const int64_t share = (n + thread_count() - 1) / thread_count();
        const int64_t first = share * thread_number(), last = first + share < n ? first + share : n;
        T* mine = partial.data() + thread_number() * slice;
        T chunk_logits[chunk * 64], chunk_uniforms[chunk];
        int64_t entries[chunk], drawn[chunk];
        for (int64_t i = first; i < last; i += chunk) {
            const int64_t count = i + chunk < last ? chunk : last - i;
            products_range_of(table, width, base, cases, vectors, order, block, i, i + count, last, out);
            if (offsets) add_offsets(offsets, n_offset_coords, offset_coefs, base, order, block, i, i + count, out);
            for (int64_t j = 0; j < count; ++j) {
                entries[j] = order ? order[i + j] : i + j;
                for (int64_t k = 0; k < block; ++k) chunk_logits[j * block + k] = out[entries[j] * block + k];
                chunk_uniforms[j] = uniforms[entries[j]];
            }
            sample_rows_of(chunk_logits, 0, count, block, chunk_uniforms, drawn);
            for (int64_t j = 0; j < count; ++j) levels[entries[j]] = drawn[j];
            add_drawn_rows_of(table, n_coords, hidden, row_coefs, base, cases, entries, drawn, count, mine);
        }
    }
    for (int t = 0; t < n_threads; ++t)
        for (int64_t k = 0; k < slice; ++k) sums[k] += partial[t * slice + k];
}

// --- momentum_step --------------------------------------------------------------------------------
// The trainer's dense update in one pass, in the torch path's order of operations:
// v = m * v + lr * g + shrink * theta (shrink = -lr * weight decay), then theta += v.
template <typename T>
RECSYS_RBM_INLINE void momentum_range(T* parameter, T* velocity, const T* gradient, T momentum, T rate, T shrink,
                                      int64_t first, int64_t last) {
#pragma omp simd
    for (int64_t i = first; i < last; ++i) {
        const T v = (velocity[i] * momentum + rate * gradient[i]) + shrink * parameter[i];
        velocity[i] = v;
        parameter[i] += v;
    }
}

RECSYS_RBM_CLONES void momentum_range_float(float* parameter, float* velocity, const float* gradient, float momentum,
                                            float rate, float shrink, int64_t first, int64_t last) {
    momentum_range(parameter, velocity, gradient, momentum, rate, shrink, first, last);
}

RECSYS_RBM_CLONES void momentum_range_double(double* parameter, double* velocity, const double* gradient,
                                             double momentum, double rate, double shrink, int64_t first,
                                             int64_t last) {
    momentum_range(parameter, velocity, gradient, momentum, rate, shrink, first, last);
}

// --- catch_up -------------------------------------------------------------------------------------
// Rows of (theta, v) last brought up to date at step clocks[r], brought to `step` by M^gap, whose entries are
// powers[0..3][gap]; rows already current are skipped. The rows are distinct, so threads never share one.
template <typename T>
RECSYS_RBM_INLINE void catch_up_range(T* parameter, T* velocity, int64_t* clocks, const int64_t* rows, int64_t width,
                                      int64_t step, const T* powers, int64_t n_powers, int64_t first, int64_t last) {
    for (int64_t i = first; i < last; ++i) {
        const int64_t row = rows[i], gap = step - clocks[row];
        if (gap == 0) continue;
        const T a = powers[gap], b = powers[n_powers + gap], c = powers[2 * n_powers + gap];
        const T d = powers[3 * n_powers + gap];
        T* theta = parameter + row * width;
        T* v = velocity + row * width;
#pragma omp simd
        for (int64_t j = 0; j < width; ++j) {
            const T t = theta[j], u = v[j];
            theta[j] = t * a + u * b;
            v[j] = u * d + t * c;
        }
        clocks[row] = step;
    }
}

RECSYS_RBM_CLONES void catch_up_float(float* parameter, float* velocity, int64_t* clocks, const int64_t* rows,
                                      int64_t width, int64_t step, const float* powers, int64_t n_powers,
                                      int64_t first, int64_t last) {
    catch_up_range(parameter, velocity, clocks, rows, width, step, powers, n_powers, first, last);
}

RECSYS_RBM_CLONES void catch_up_double(double* parameter, double* velocity, int64_t* clocks, const int64_t* rows,
                                       int64_t width, int64_t step, const double* powers, int64_t n_powers,
                                       int64_t first, int64_t last) {
    catch_up_range(parameter, velocity, clocks, rows, width, step, powers, n_powers, first, last);
}

// --- uniforms ---------------------------------------------------------------------------------------
// NumPy's PCG64 stream (a 128-bit LCG with the XSL-RR output), continued here so that the numbers are the
// ones NumPy would draw: each 64-bit output is the output function of the stepped state; a float32 takes
// 32 bits (the low half of an output, then its high half), a float64 a whole output. An LCG can jump ahead
// by n steps in O(log n) (Brown 1994), so each thread starts at its own share of the outputs.
using u128 = unsigned __int128;

constexpr u128 pcg_multiplier() { return (u128(2549297995355413924ULL) << 64) | 4865540595714422341ULL; }

// The state n steps on: s * a^n + c * (a^(n-1) + ... + 1).
u128 pcg_jumped(u128 state, u128 increment, uint64_t steps) {
    u128 multiplier = pcg_multiplier(), total_multiplier = 1, total_increment = 0;
    for (; steps; steps >>= 1) {
        if (steps & 1) {
            total_multiplier *= multiplier;
            total_increment = total_increment * multiplier + increment;
        }
        increment *= multiplier + 1;
        multiplier *= multiplier;
    }
    return total_multiplier * state + total_increment;
}

RECSYS_RBM_INLINE uint64_t pcg_output(u128& state, u128 increment) {
    state = state * pcg_multiplier() + increment;
    const uint64_t folded = uint64_t(state >> 64) ^ uint64_t(state);
    const unsigned rotation = unsigned(state >> 122);
    return (folded >> rotation) | (folded << ((64 - rotation) & 63));
}

// Outputs first..last-1 counted from `state` (output i comes from the state stepped i + 1 times).
void pcg_floats(u128 state, u128 increment, uint64_t first, uint64_t last, float* out) {
    state = pcg_jumped(state, increment, first);
    for (uint64_t i = first; i < last; ++i) {
        const uint64_t bits = pcg_output(state, increment);
        out[2 * i] = float(uint32_t(bits) >> 8) * (1.0f / 16777216.0f);
        out[2 * i + 1] = float(uint32_t(bits >> 32) >> 8) * (1.0f / 16777216.0f);
    }
}

void pcg_doubles(u128 state, u128 increment, uint64_t first, uint64_t last, double* out) {
    state = pcg_jumped(state, increment, first);
    for (uint64_t i = first; i < last; ++i)
        out[i] = double(pcg_output(state, increment) >> 11) * (1.0 / 9007199254740992.0);
}

// --- the Python side ----------------------------------------------------------------------------
bool in_range(const int64_t* index, int64_t n, int64_t low, int64_t high) {
    bool ok = true;
    for (int64_t i = 0; i < n; ++i) ok &= (index[i] >= low) & (index[i] < high);
    return ok;
}

// Whether `order` holds every position 0..n-1 once (a visiting order must neither skip nor repeat one).
bool is_permutation(const int64_t* order, int64_t n) {
    if (!in_range(order, n, 0, n)) return false;
    std::vector<unsigned char> seen(n, 0);
    for (int64_t i = 0; i < n; ++i) {
        if (seen[order[i]]) return false;
        seen[order[i]] = 1;
    }
    return true;
}

// --- draw_picks -------------------------------------------------------------------------------
// The ones of x ~ Bernoulli(sigmoid(z)) over a row of logits, drawn exactly by thinning a Poisson process. Unit j
// is picked when a Poisson process of intensity softplus(z_j) = -log(1 - sigmoid(z_j)) has a point in [j, j + 1):
// that happens with probability sigmoid(z_j), independently for each unit. Within a block of PICK_BLOCK units
// whose largest logit is negative, exp(max z) bounds every intensity, so the points come from a process of that
// constant rate, each kept with probability softplus(z_j) / rate. A block without a point (most blocks of a
// large catalogue) costs a comparison of one uniform, not an exponential and a uniform per unit; a block with a
// likely unit (DIRECT_FROM) is drawn unit by unit. Each row's uniforms come from its own seed (SplitMix64), so
// the draw is the same on any number of threads.
constexpr int64_t PICK_BLOCK = 16;
// A block whose largest logit reaches this is drawn unit by unit: with a rate above e^-1.6 ≈ 0.2 its points
// (about 3 a block, each a logarithm and an exponential) would cost more than 16 direct draws.
constexpr double DIRECT_FROM = -1.6;

struct SplitMix64 {
    static constexpr uint64_t step = 0x9E3779B97F4A7C15ULL;
    uint64_t state;
    static RECSYS_RBM_INLINE double mix(uint64_t z) {  // the k-th output is mix(seed + k · step): U[0, 1), 53 bits
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
        return static_cast<double>((z ^ (z >> 31)) >> 11) * 0x1.0p-53;
    }
    RECSYS_RBM_INLINE double uniform() { return mix(state += step); }
    RECSYS_RBM_INLINE void fill(double* out, int64_t n) {  // the next n outputs at once (no chain between them)
        for (int64_t k = 0; k < n; ++k) out[k] = mix(state + static_cast<uint64_t>(k + 1) * step);
        state += static_cast<uint64_t>(n) * step;
    }
};

RECSYS_RBM_INLINE double logistic(double z) {
    const double e = exp_nonpositive<double>(z < 0 ? z : -z);
    return z < 0 ? e / (1.0 + e) : 1.0 / (1.0 + e);
}

// Each block's largest logit, and where it is below DIRECT_FROM the rate exp(max z) and the chance
// exp(-rate · length) that the block holds no point; any other block gets rate 0 (drawn unit by unit). Independent
// across blocks, so the loops vectorise.
template <typename T>
RECSYS_RBM_INLINE void block_bounds(const T* z, int64_t n, T* rate, T* empty) {
    const int64_t full = n / PICK_BLOCK, blocks = (n + PICK_BLOCK - 1) / PICK_BLOCK;
    for (int64_t b = 0; b < full; ++b) {
        const T* block = z + b * PICK_BLOCK;
        T top = block[0];
        for (int64_t k = 1; k < PICK_BLOCK; ++k) top = block[k] > top ? block[k] : top;
        rate[b] = top;
    }
    if (full < blocks) {
        T top = z[full * PICK_BLOCK];
        for (int64_t j = full * PICK_BLOCK + 1; j < n; ++j) top = z[j] > top ? z[j] : top;
        rate[full] = top;
    }
    for (int64_t b = 0; b < blocks; ++b) rate[b] = rate[b] < T(DIRECT_FROM) ? exp_nonpositive<T>(rate[b]) : T(0);
    for (int64_t b = 0; b < blocks; ++b) {
        const T length = static_cast<T>(b < full ? PICK_BLOCK : n - full * PICK_BLOCK);
        empty[b] = exp_nonpositive<T>(-rate[b] * length);
    }
}

RECSYS_RBM_CLONES void block_bounds_float(const float* z, int64_t n, float* rate, float* empty) {
    block_bounds(z, n, rate, empty);
}
RECSYS_RBM_CLONES void block_bounds_double(const double* z, int64_t n, double* rate, double* empty) {
    block_bounds(z, n, rate, empty);
}
void block_bounds_of(const float* z, int64_t n, float* rate, float* empty) { block_bounds_float(z, n, rate, empty); }
void block_bounds_of(const double* z, int64_t n, double* rate, double* empty) {
    block_bounds_double(z, n, rate, empty);
}

// The picked units of one row, ascending: the first `capacity` of them written to out; returns how many there are.
// `rate` and `empty` are scratch for the row's blocks.
template <typename T>
int64_t pick_row(const T* z, int64_t n, uint64_t seed, int64_t* out, int64_t capacity, T* rate, T* empty) {
    SplitMix64 random{seed};
    block_bounds_of(z, n, rate, empty);
    int64_t count = 0;
    for (int64_t start = 0, b = 0; start < n; start += PICK_BLOCK, ++b) {
        const int64_t end = start + PICK_BLOCK < n ? start + PICK_BLOCK : n;
        if (rate[b] == 0) {  // a likely unit in the block (or every probability 0): draw each unit
            double uniforms[PICK_BLOCK], probability[PICK_BLOCK];
            const int64_t length = end - start;
            random.fill(uniforms, length);
            for (int64_t k = 0; k < length; ++k) probability[k] = logistic(static_cast<double>(z[start + k]));
            for (int64_t k = 0; k < length; ++k) {  // without a branch on the draw
                if (count < capacity) out[count] = start + k;
                count += uniforms[k] < probability[k];
            }
            continue;
        }
        double miss = 1.0 - random.uniform();  // in (0, 1]; the gap to the next point is -log(miss) / rate
        if (miss <= static_cast<double>(empty[b])) continue;  // no point in the block (most blocks)
        const double block_rate = static_cast<double>(rate[b]);  // >= softplus(z_j) for every unit of the block
        double position = static_cast<double>(start);
        for (;;) {
            position += -std::log(miss) / block_rate;
            if (position >= static_cast<double>(end)) break;
            const int64_t j = static_cast<int64_t>(position);
            const double e = exp_nonpositive<double>(static_cast<double>(z[j]));  // z_j <= max z < 0
            const double draw = random.uniform() * block_rate;
            // softplus(z) = log(1 + e) lies in [e - e²/2, e]: the logarithm only where the draw falls in between
            if (draw < e - 0.5 * e * e || (draw < e && draw < std::log1p(e))) {  // kept: j picked
                if (count < capacity) out[count] = j;
                ++count;
                position = static_cast<double>(j + 1);  // the rest of [j, j + 1) cannot change the draw
            }
            miss = 1.0 - random.uniform();
        }
    }
    return count;
}

template <typename P>
P* pointer(unsigned long long address) {
    return reinterpret_cast<P*>(static_cast<uintptr_t>(address));
}

int thread_number() {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

int thread_count() {
#ifdef _OPENMP
    return omp_get_num_threads();
#else
    return 1;
#endif
}

// block_products(table, table_rows, width, base, cases, vectors, n_vectors, n, block, out, offsets, n_offset_coords,
//                offset_coefs, order, n_threads, is_double); offsets may be 0 (none): a (table_rows,
//                n_offset_coords) array, combined with n_offset_coords float64 coefficients; order may be 0 (entry
//                order): a permutation of the entries to visit them in.
PyObject* py_block_products(PyObject*, PyObject* args) {
    unsigned long long table, base, cases, vectors, out, offsets, offset_coefs, order;
    long long table_rows, width, n_vectors, n, block, n_offset_coords;
    int n_threads, is_double;
    if (!PyArg_ParseTuple(args, "KLLKKKLLLKKLKKii", &table, &table_rows, &width, &base, &cases, &vectors, &n_vectors,
                          &n, &block, &out, &offsets, &n_offset_coords, &offset_coefs, &order, &n_threads, &is_double))
        return nullptr;
    const int64_t* base_ = pointer<const int64_t>(base);
    const int64_t* cases_ = pointer<const int64_t>(cases);
    const int64_t* order_ = order ? pointer<const int64_t>(order) : nullptr;
    const double* coefs_ = pointer<const double>(offset_coefs);
    bool ok;
    Py_BEGIN_ALLOW_THREADS;
    ok = block >= 1 && in_range(base_, n, 0, table_rows - block + 1) && in_range(cases_, n, 0, n_vectors) &&
         (!order_ || is_permutation(order_, n));
    if (ok) {
#pragma omp parallel num_threads(n_threads)
        {
            const int64_t share = (n + thread_count() - 1) / thread_count();
            const int64_t first = share * thread_number(), last = first + share < n ? first + share : n;
            if (first < last && is_double) {
                products_range_double(pointer<const double>(table), width, base_, cases_,
                                      pointer<const double>(vectors), order_, block, first, last, last,
                                      pointer<double>(out));
                if (offsets)
                    add_offsets(pointer<const double>(offsets), n_offset_coords, coefs_, base_, order_, block, first,
                                last, pointer<double>(out));
            } else if (first < last) {
                products_range_float(pointer<const float>(table), width, base_, cases_, pointer<const float>(vectors),
                                     order_, block, first, last, last, pointer<float>(out));
                if (offsets)
                    add_offsets(pointer<const float>(offsets), n_offset_coords, coefs_, base_, order_, block, first,
                                last, pointer<float>(out));
            }
        }
    }
    Py_END_ALLOW_THREADS;
    if (!ok) {
        PyErr_SetString(PyExc_IndexError, "block_products: an entry's rows or case is out of range, or the order is "
                                          "not a permutation of the entries");
        return nullptr;
    }
    Py_RETURN_NONE;
}

// sampled_blocks(table, table_rows, n_coords, hidden, row_coefs, base, cases, vectors, n_cases, order, n, block,
//                offsets, n_offset_coords, offset_coefs, uniforms, out, levels, sums, n_threads, is_double):
//                block_products (table rows of n_coords * hidden values) into out, then levels[e] drawn from
//                softmax(out[e]) and sums[cases[e]] += the drawn row's sum_c row_coefs[c] * coordinate c.
PyObject* py_sampled_blocks(PyObject*, PyObject* args) {
    unsigned long long table, row_coefs, base, cases, vectors, order, offsets, offset_coefs, uniforms, out, levels,
        sums;
    long long table_rows, n_coords, hidden, n_cases, n, block, n_offset_coords;
    int n_threads, is_double;
    if (!PyArg_ParseTuple(args, "KLLLKKKKLKLLKLKKKKKii", &table, &table_rows, &n_coords, &hidden, &row_coefs, &base,
                          &cases, &vectors, &n_cases, &order, &n, &block, &offsets, &n_offset_coords, &offset_coefs,
                          &uniforms, &out, &levels, &sums, &n_threads, &is_double))
        return nullptr;
    const int64_t* base_ = pointer<const int64_t>(base);
    const int64_t* cases_ = pointer<const int64_t>(cases);
    const int64_t* order_ = order ? pointer<const int64_t>(order) : nullptr;
    bool ok;
    Py_BEGIN_ALLOW_THREADS;
    ok = block >= 1 && block <= 64 && n_threads >= 1 && in_range(base_, n, 0, table_rows - block + 1) &&
         in_range(cases_, n, 0, n_cases) && (!order_ || is_permutation(order_, n));
    if (ok && is_double)
        sampled_blocks(pointer<const double>(table), n_coords, hidden, pointer<const double>(row_coefs), base_,
                       cases_, pointer<const double>(vectors), n_cases, order_, n, block,
                       offsets ? pointer<const double>(offsets) : nullptr, n_offset_coords,
                       pointer<const double>(offset_coefs), pointer<const double>(uniforms), pointer<double>(out),
                       pointer<int64_t>(levels), pointer<double>(sums), n_threads);
    else if (ok)
        sampled_blocks(pointer<const float>(table), n_coords, hidden, pointer<const double>(row_coefs), base_, cases_,
                       pointer<const float>(vectors), n_cases, order_, n, block,
                       offsets ? pointer<const float>(offsets) : nullptr, n_offset_coords,
                       pointer<const double>(offset_coefs), pointer<const float>(uniforms), pointer<float>(out),
                       pointer<int64_t>(levels), pointer<float>(sums), n_threads);
    Py_END_ALLOW_THREADS;
    if (!ok) {
        PyErr_SetString(PyExc_IndexError, "sampled_blocks: an entry's rows or case is out of range, the order is not "
                                          "a permutation of the entries, or there are over 64 levels");
        return nullptr;
    }
    Py_RETURN_NONE;
}

// add_rows(storage, n_rows, n_coords, width, rows, cases, per_case, n_per_case, weights, coefs, order, group, n,
//          n_threads, is_double); weights may be 0 (all ones); coefs are n_coords float64 values; order may be 0
//          (entry order): a permutation of the entries to visit them in; group: rows per thread's share (>= 1).
PyObject* py_add_rows(PyObject*, PyObject* args) {
    unsigned long long storage, rows, cases, per_case, weights, coefs, order;
    long long n_rows, n_coords, width, n_per_case, group, n;
    int n_threads, is_double;
    if (!PyArg_ParseTuple(args, "KLLLKKKLKKKLLii", &storage, &n_rows, &n_coords, &width, &rows, &cases, &per_case,
                          &n_per_case, &weights, &coefs, &order, &group, &n, &n_threads, &is_double))
        return nullptr;
    const int64_t* rows_ = pointer<const int64_t>(rows);
    const int64_t* cases_ = pointer<const int64_t>(cases);
    const int64_t* order_ = order ? pointer<const int64_t>(order) : nullptr;
    const double* coefs_ = pointer<const double>(coefs);
    bool ok;
    Py_BEGIN_ALLOW_THREADS;
    ok = group >= 1 && in_range(rows_, n, 0, n_rows) && in_range(cases_, n, 0, n_per_case) &&
         (!order_ || is_permutation(order_, n));
    if (ok) {
#pragma omp parallel num_threads(n_threads)
        {
            if (is_double)
                add_owned_double(pointer<double>(storage), n_coords, width, rows_, cases_,
                                 pointer<const double>(per_case), weights ? pointer<const double>(weights) : nullptr,
                                 coefs_, order_, group, n, thread_number(), thread_count());
            else
                add_owned_float(pointer<float>(storage), n_coords, width, rows_, cases_,
                                pointer<const float>(per_case), weights ? pointer<const float>(weights) : nullptr,
                                coefs_, order_, group, n, thread_number(), thread_count());
        }
    }
    Py_END_ALLOW_THREADS;
    if (!ok) {
        PyErr_SetString(PyExc_IndexError, "add_rows: a row or case index is out of range, or the order is not a "
                                          "permutation of the entries");
        return nullptr;
    }
    Py_RETURN_NONE;
}

// group_order(keys, n, n_keys, order): order = the positions sorted by key, stably.
PyObject* py_group_order(PyObject*, PyObject* args) {
    unsigned long long keys, order;
    long long n, n_keys;
    if (!PyArg_ParseTuple(args, "KLLK", &keys, &n, &n_keys, &order)) return nullptr;
    const int64_t* keys_ = pointer<const int64_t>(keys);
    bool ok;
    Py_BEGIN_ALLOW_THREADS;
    ok = in_range(keys_, n, 0, n_keys);
    if (ok) group_order(keys_, n, n_keys, pointer<int64_t>(order));
    Py_END_ALLOW_THREADS;
    if (!ok) {
        PyErr_SetString(PyExc_IndexError, "group_order: a key is out of range");
        return nullptr;
    }
    Py_RETURN_NONE;
}

// sample_levels(logits, n, levels, uniforms, out, n_threads, is_double); levels <= 64.
PyObject* py_sample_levels(PyObject*, PyObject* args) {
    unsigned long long logits, uniforms, out;
    long long n, levels;
    int n_threads, is_double;
    if (!PyArg_ParseTuple(args, "KLLKKii", &logits, &n, &levels, &uniforms, &out, &n_threads, &is_double))
        return nullptr;
    if (levels < 1 || levels > 64) {
        PyErr_SetString(PyExc_ValueError, "sample_levels: between 1 and 64 levels");
        return nullptr;
    }
    Py_BEGIN_ALLOW_THREADS;
#pragma omp parallel num_threads(n_threads)
    {
        const int64_t share = (n + thread_count() - 1) / thread_count();
        const int64_t first = share * thread_number(), last = first + share < n ? first + share : n;
        if (first < last && is_double)
            sample_rows_double(pointer<const double>(logits), first, last, levels, pointer<const double>(uniforms),
                               pointer<int64_t>(out));
        else if (first < last)
            sample_rows_float(pointer<const float>(logits), first, last, levels, pointer<const float>(uniforms),
                              pointer<int64_t>(out));
    }
    Py_END_ALLOW_THREADS;
    Py_RETURN_NONE;
}

// pcg64_uniforms(state_high, state_low, increment_high, increment_low, n_outputs, out, is_double, n_threads):
//                 out takes 2 * n_outputs float32 values (or n_outputs float64 ones) of NumPy's PCG64 stream
//                 from the given state; returns the state after them as (high, low).
PyObject* py_pcg64_uniforms(PyObject*, PyObject* args) {
    unsigned long long state_high, state_low, increment_high, increment_low, out;
    long long n_outputs;
    int is_double, n_threads;
    if (!PyArg_ParseTuple(args, "KKKKLKii", &state_high, &state_low, &increment_high, &increment_low, &n_outputs,
                          &out, &is_double, &n_threads))
        return nullptr;
    if (n_outputs < 0 || n_threads < 1) {
        PyErr_SetString(PyExc_ValueError, "pcg64_uniforms: a negative count or no threads");
        return nullptr;
    }
    const u128 state = (u128(state_high) << 64) | state_low, increment = (u128(increment_high) << 64) | increment_low;
    const uint64_t n = uint64_t(n_outputs);
    Py_BEGIN_ALLOW_THREADS;
#pragma omp parallel num_threads(n_threads)
    {
        const uint64_t share = (n + thread_count() - 1) / thread_count();
        const uint64_t first = share * thread_number(), last = first + share < n ? first + share : n;
        if (first < last && is_double)
            pcg_doubles(state, increment, first, last, pointer<double>(out));
        else if (first < last)
            pcg_floats(state, increment, first, last, pointer<float>(out));
    }
    Py_END_ALLOW_THREADS;
    const u128 after = pcg_jumped(state, increment, n);
    return Py_BuildValue("KK", (unsigned long long)(after >> 64), (unsigned long long)after);
}

// momentum_step(parameter, velocity, gradient, n, momentum, rate, shrink, n_threads, is_double): n values each.
PyObject* py_momentum_step(PyObject*, PyObject* args) {
    unsigned long long parameter, velocity, gradient;
    long long n;
    double momentum, rate, shrink;
    int n_threads, is_double;
    if (!PyArg_ParseTuple(args, "KKKLdddii", &parameter, &velocity, &gradient, &n, &momentum, &rate, &shrink,
                          &n_threads, &is_double))
        return nullptr;
    Py_BEGIN_ALLOW_THREADS;
    // Small tensors (biases) are not worth waking a second thread for.
#pragma omp parallel num_threads(n >= (1 << 16) ? n_threads : 1)
    {
        const int64_t share = (n + thread_count() - 1) / thread_count();
        const int64_t first = share * thread_number(), last = first + share < n ? first + share : n;
        if (first < last && is_double)
            momentum_range_double(pointer<double>(parameter), pointer<double>(velocity),
                                  pointer<const double>(gradient), momentum, rate, shrink, first, last);
        else if (first < last)
            momentum_range_float(pointer<float>(parameter), pointer<float>(velocity), pointer<const float>(gradient),
                                 float(momentum), float(rate), float(shrink), first, last);
    }
    Py_END_ALLOW_THREADS;
    Py_RETURN_NONE;
}

// catch_up(parameter, velocity, clocks, rows, n_rows, width, n, step, powers, n_powers, n_threads, is_double):
//          the n distinct rows brought from their clocks to `step`; powers is (4, n_powers).
PyObject* py_catch_up(PyObject*, PyObject* args) {
    unsigned long long parameter, velocity, clocks, rows, powers;
    long long n_rows, width, n, step, n_powers;
    int n_threads, is_double;
    if (!PyArg_ParseTuple(args, "KKKKLLLLKLii", &parameter, &velocity, &clocks, &rows, &n_rows, &width, &n, &step,
                          &powers, &n_powers, &n_threads, &is_double))
        return nullptr;
    const int64_t* rows_ = pointer<const int64_t>(rows);
    int64_t* clocks_ = pointer<int64_t>(clocks);
    bool ok;
    Py_BEGIN_ALLOW_THREADS;
    ok = in_range(rows_, n, 0, n_rows);
    for (int64_t i = 0; ok && i < n; ++i) ok = step - clocks_[rows_[i]] >= 0 && step - clocks_[rows_[i]] < n_powers;
    if (ok) {
#pragma omp parallel num_threads(n_threads)
        {
            const int64_t share = (n + thread_count() - 1) / thread_count();
            const int64_t first = share * thread_number(), last = first + share < n ? first + share : n;
            if (first < last && is_double)
                catch_up_double(pointer<double>(parameter), pointer<double>(velocity), clocks_, rows_, width, step,
                                pointer<const double>(powers), n_powers, first, last);
            else if (first < last)
                catch_up_float(pointer<float>(parameter), pointer<float>(velocity), clocks_, rows_, width, step,
                               pointer<const float>(powers), n_powers, first, last);
        }
    }
    Py_END_ALLOW_THREADS;
    if (!ok) {
        PyErr_SetString(PyExc_IndexError, "catch_up: a row is out of range, or its clock is ahead of the step or "
                                          "further behind than the powers reach");
        return nullptr;
    }
    Py_RETURN_NONE;
}

// draw_picks(logits, n_rows, n_units, seeds, counts, picks, capacity, n_threads, is_double): each row's number of
//            picks into counts, and its first `capacity` picks (ascending) into its row of picks (n_rows, capacity).
PyObject* py_draw_picks(PyObject*, PyObject* args) {
    unsigned long long logits, seeds, counts, picks;
    long long n_rows, n_units, capacity;
    int n_threads, is_double;
    if (!PyArg_ParseTuple(args, "KLLKKKLii", &logits, &n_rows, &n_units, &seeds, &counts, &picks, &capacity,
                          &n_threads, &is_double))
        return nullptr;
    Py_BEGIN_ALLOW_THREADS;
#pragma omp parallel num_threads(n_threads)
    {
        const int64_t blocks = (n_units + PICK_BLOCK - 1) / PICK_BLOCK;
        std::vector<double> scratch(2 * blocks);  // each thread's rates and empty chances (float ones use half)
#pragma omp for schedule(dynamic, 4)
        for (int64_t row = 0; row < n_rows; ++row) {
            const uint64_t seed = pointer<const uint64_t>(seeds)[row];
            int64_t* out = pointer<int64_t>(picks) + row * capacity;
            int64_t found;
            if (is_double) {
                found = pick_row(pointer<const double>(logits) + row * n_units, n_units, seed, out, capacity,
                                 scratch.data(), scratch.data() + blocks);
            } else {
                float* rates = reinterpret_cast<float*>(scratch.data());
                found = pick_row(pointer<const float>(logits) + row * n_units, n_units, seed, out, capacity, rates,
                                 rates + blocks);
            }
            pointer<int64_t>(counts)[row] = found;
        }
    }
    Py_END_ALLOW_THREADS;
    Py_RETURN_NONE;
}

PyMethodDef methods[] = {
    {"block_products", py_block_products, METH_VARARGS, "out[e, k] = table[base[e] + k] . vectors[cases[e]]"},
    {"add_rows", py_add_rows, METH_VARARGS, "storage[rows[i], c] += coefs[c] * weights[i] * per_case[cases[i]]"},
    {"sampled_blocks", py_sampled_blocks, METH_VARARGS, "block_products, a level drawn per entry, drawn rows summed"},
    {"sample_levels", py_sample_levels, METH_VARARGS, "one level per row from softmax(logits), by the inverse CDF"},
    {"group_order", py_group_order, METH_VARARGS, "the positions sorted by key, stably (a counting sort)"},
    {"momentum_step", py_momentum_step, METH_VARARGS, "v = m * v + lr * g + shrink * theta; theta += v"},
    {"catch_up", py_catch_up, METH_VARARGS, "(theta, v)[r] = M^(step - clocks[r]) (theta, v)[r]; clocks[r] = step"},
    {"draw_picks", py_draw_picks, METH_VARARGS, "the ones of Bernoulli(sigmoid(logits)) per row, by thinning"},
    {"pcg64_uniforms", py_pcg64_uniforms, METH_VARARGS, "uniforms of NumPy's PCG64 stream, from a given state"},
    {nullptr, nullptr, 0, nullptr},
};

PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_kernels", "Fused row kernels (see recsys_rbm.accel.native).", -1, methods,
    nullptr,               nullptr,    nullptr,                                       nullptr,
};

}  // namespace

PyMODINIT_FUNC PyInit__kernels() { return PyModule_Create(&module); }
