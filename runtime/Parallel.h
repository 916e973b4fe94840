// Parallel.h — the runtime's thread pool: parallel loops over independent
// iterations, for JIT-compiled code (which finds these C symbols in the
// process) and for emitted C++.
//
// One call splits [0, n) into contiguous chunks: k = min(threads, n) chunks
// whose sizes differ by at most one, the first n % k one larger. The
// partition is a pure function of (n, threads); which thread runs which chunk
// is not: the caller and the workers claim chunks from an atomic counter, so a
// worker that wakes late costs nothing. A call whose work is small (n × cost
// below 30,000), a nested call (made from inside a loop body) and every call
// when there is one thread run fn(context, 0, n) on the caller, with no
// synchronisation at all. Loop bodies must therefore give the same result for
// any partition, which they do when iterations are independent.
//
// Workers are created at the first call that needs them and kept; when idle
// they spin for about 50 µs (calls come in bursts) and then sleep on a
// condition variable. Calls from several host threads at once are safe: they
// take turns. The pool is a static object whose destructor joins the workers
// at exit; a call after that runs inline.
//
// C++17 and the standard library only: --emit-cpp copies this file. Usable
// from C as well.
#pragma once

#include <stdint.h>

#ifdef __cplusplus
#define NNC_NOEXCEPT noexcept
extern "C" {
#else
#define NNC_NOEXCEPT
#endif

/// A loop body over iterations [begin, end). It must not throw: it is called
/// from worker threads, where an exception ends the process.
typedef void (*nnc_task_fn)(void *context, int64_t begin, int64_t end);

/// Runs fn over [0, n) split into contiguous chunks across the pool's threads
/// (the caller runs chunks too); returns when all are done. `cost` is the
/// rough work per iteration (e.g. multiply-adds; below 1 counts as 1): when
/// n × cost is below 30,000 it runs fn(context, 0, n) inline. Does nothing
/// when n ≤ 0. A call made from inside fn runs inline.
void nnc_parallel_for(nnc_task_fn fn, void *context, int64_t n, int64_t cost) NNC_NOEXCEPT;

/// Sets the number of threads, the caller included; 0 (or less) means the
/// number of cores (std::thread::hardware_concurrency, at least 1), and more
/// than 1024 means 1024. Takes effect at the next nnc_parallel_for.
void nnc_set_threads(int threads) NNC_NOEXCEPT;

/// The current number of threads, the caller included (initially the number
/// of cores).
int nnc_threads(void) NNC_NOEXCEPT;

#ifdef __cplusplus
} // extern "C"
#endif
