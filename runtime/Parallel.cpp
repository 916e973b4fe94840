// Parallel.cpp — the thread pool behind nnc_parallel_for.
//
// One job at a time: a caller takes callMutex_ (so host threads take turns),
// publishes the job under mutex_ by bumping generation_, wakes sleeping
// workers, and runs chunks itself. Every thread claims chunk indices from
// nextChunk_ until they run out; the one that finishes the last chunk
// (chunksLeft_ reaching 0) wakes the caller if it sleeps. A worker copies the
// job under mutex_ and counts itself in active_ until it has stopped claiming,
// and the next job is published only when active_ is 0, so a worker that
// wakes late never sees a job half-written. Waiting threads spin for kSpin
// first, then sleep on a condition variable.
#include "Parallel.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

namespace {

/// Below this much work (n × cost) a call runs inline: about 10 µs, less than
/// waking the workers costs.
constexpr int64_t kInlineWork = 30000;
/// The most threads nnc_set_threads accepts.
constexpr int kMaxThreads = 1024;
/// How long an idle thread spins before it sleeps.
constexpr std::chrono::microseconds kSpin{50};

/// The requested number of threads; 0 means the number of cores.
std::atomic<int> gThreads{0};
/// Set at exit once the workers are stopped: later calls run inline.
std::atomic<bool> gPoolStopped{false};
/// True on workers, and on a caller while its parallel call runs: a call
/// made there runs inline (it would otherwise wait for itself).
thread_local bool tInsideParallel = false;

int hardwareThreads() {
  static const int n = int(std::max(1u, std::thread::hardware_concurrency()));
  return n;
}

/// Tells the CPU we are in a spin loop (saves power, frees the sibling hyperthread).
inline void cpuRelax() {
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
  __builtin_ia32_pause();
#elif defined(__GNUC__) && (defined(__aarch64__) || defined(__arm__))
  __asm__ __volatile__("yield");
#endif
}

/// Spins until done() or kSpin has passed; returns done().
template <class Done> bool spinUntil(Done done) {
  auto deadline = std::chrono::steady_clock::now() + kSpin;
  for (;;) {
    for (int i = 0; i < 64; ++i) {
      if (done())
        return true;
      cpuRelax();
    }
    if (std::chrono::steady_clock::now() >= deadline)
      return done();
  }
}

/// Chunk i of [0, n) split into k near-equal contiguous chunks, the first
/// n % k of them one longer.
void chunkBounds(int64_t n, int64_t k, int64_t i, int64_t &begin, int64_t &end) {
  int64_t base = n / k, extra = n % k;
  begin = i * base + std::min(i, extra);
  end = begin + base + (i < extra ? 1 : 0);
}

/// Sets tInsideParallel for a scope.
struct InsideParallel {
  InsideParallel() { tInsideParallel = true; }
  ~InsideParallel() { tInsideParallel = false; }
};

class Pool {
public:
  /// Runs fn over [0, n) in min(threads, n) chunks on `threads` threads.
  void run(nnc_task_fn fn, void *context, int64_t n, int threads) noexcept;
  /// Stops and joins the workers at exit, unless a call is in progress (exit
  /// from inside a loop body, or while another thread is in a call): then they
  /// are left to end with the process.
  void shutdown() noexcept;

private:
  struct Job {
    nnc_task_fn fn;
    void *context;
    int64_t n, chunks;
  };

  /// Replaces the workers with `count` new ones (fewer if threads cannot be
  /// created: the chunks are claimed, so any number of threads finishes a job).
  void resize(int count);
  void stopWorkers();
  void workerLoop(uint64_t seen);
  /// Claims and runs chunks of `job` until none are left; returns whether
  /// this thread finished the last one.
  bool runChunks(const Job &job) noexcept;

  std::mutex callMutex_; ///< held for a whole call
  int wantedWorkers_ = 0; ///< (callMutex_) workers asked for at the last resize
  std::vector<std::thread> workers_; ///< (callMutex_)

  std::mutex mutex_;
  std::condition_variable wake_; ///< workers wait for a new job here
  std::condition_variable idle_; ///< the caller waits here for chunksLeft_ or active_ to reach 0
  Job job_{};                    ///< (mutex_) the current job
  bool stop_ = false;            ///< (mutex_) workers should return
  int sleeping_ = 0;             ///< (mutex_) workers waiting on wake_
  /// Workers that copied job_ and may still claim chunks: changed under
  /// mutex_, read without it by a caller spinning before it takes mutex_.
  std::atomic<int> active_{0};

  std::atomic<uint64_t> generation_{0}; ///< bumped (under mutex_) for every job and at stop
  std::atomic<int64_t> nextChunk_{0};   ///< the next chunk index to claim
  std::atomic<int64_t> chunksLeft_{0};  ///< chunks of the current job not yet finished
};

bool Pool::runChunks(const Job &job) noexcept {
  bool last = false;
  for (;;) {
    int64_t i = nextChunk_.fetch_add(1, std::memory_order_relaxed);
    if (i >= job.chunks)
      return last;
    int64_t begin, end;
    chunkBounds(job.n, job.chunks, i, begin, end);
    job.fn(job.context, begin, end);
    if (chunksLeft_.fetch_sub(1, std::memory_order_acq_rel) == 1)
      last = true;
  }
}

void Pool::run(nnc_task_fn fn, void *context, int64_t n, int threads) noexcept {
  std::lock_guard<std::mutex> call(callMutex_);
  if (wantedWorkers_ != threads - 1)
    resize(threads - 1);
  Job job{fn, context, n, std::min<int64_t>(threads, n)};
  int64_t toWake, sleeping;
  // The workers of the last job may not have said they are done yet (a
  // worker counts itself out after its last chunk, under mutex_): wait for
  // that spinning, as it takes well under a microsecond, rather than
  // sleeping on idle_, whose wake-up takes several.
  spinUntil([&] { return active_.load(std::memory_order_acquire) == 0; });
  {
    std::unique_lock<std::mutex> lock(mutex_);
    idle_.wait(lock, [&] { return active_.load(std::memory_order_relaxed) == 0; });
    job_ = job;
    nextChunk_.store(0, std::memory_order_relaxed);
    chunksLeft_.store(job.chunks, std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_release);
    sleeping = sleeping_;
    toWake = std::min<int64_t>(sleeping, job.chunks - 1);
  }
  if (toWake > 0 && toWake == sleeping)
    wake_.notify_all(); // one system call rather than one per worker
  else
    for (int64_t i = 0; i < toWake; ++i)
      wake_.notify_one();

  InsideParallel inside;
  runChunks(job);
  auto done = [&] { return chunksLeft_.load(std::memory_order_acquire) == 0; };
  if (!spinUntil(done)) {
    std::unique_lock<std::mutex> lock(mutex_);
    idle_.wait(lock, done);
  }
}

void Pool::workerLoop(uint64_t seen) {
  tInsideParallel = true;
  for (;;) {
    spinUntil([&] { return generation_.load(std::memory_order_relaxed) != seen; });
    Job job;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      if (!stop_ && generation_.load(std::memory_order_relaxed) == seen) {
        ++sleeping_;
        wake_.wait(lock, [&] {
          return stop_ || generation_.load(std::memory_order_relaxed) != seen;
        });
        --sleeping_;
      }
      if (stop_)
        return;
      seen = generation_.load(std::memory_order_relaxed);
      job = job_;
      ++active_;
    }
    bool last = runChunks(job);
    std::lock_guard<std::mutex> lock(mutex_);
    if (--active_ == 0 || last)
      idle_.notify_one();
  }
}

void Pool::resize(int count) {
  stopWorkers();
  wantedWorkers_ = count;
  uint64_t seen = generation_.load(std::memory_order_relaxed);
  for (int i = 0; i < count; ++i) {
    try {
      workers_.emplace_back([this, seen] { workerLoop(seen); });
    } catch (const std::system_error &) {
      break; // out of threads: the ones we have will do
    }
  }
}

void Pool::stopWorkers() {
  if (workers_.empty())
    return;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
    generation_.fetch_add(1, std::memory_order_relaxed); // ends the spinning
  }
  wake_.notify_all();
  for (std::thread &worker : workers_)
    worker.join();
  workers_.clear();
  std::lock_guard<std::mutex> lock(mutex_);
  stop_ = false;
}

void Pool::shutdown() noexcept {
  gPoolStopped.store(true);
  if (tInsideParallel || !callMutex_.try_lock())
    return;
  stopWorkers();
  callMutex_.unlock();
}

/// The pool, created at the first parallel call. It is never freed, so a
/// thread still inside a call at exit never meets a destroyed mutex; a static
/// object's destructor stops its workers.
Pool &thePool() {
  static Pool *pool = new Pool;
  static struct Stopper {
    ~Stopper() { pool->shutdown(); }
  } stopper;
  return *pool;
}

bool smallWork(int64_t n, int64_t cost) {
  cost = std::max<int64_t>(cost, 1);
  return n < kInlineWork && cost < kInlineWork && n * cost < kInlineWork;
}

} // namespace

extern "C" {

void nnc_parallel_for(nnc_task_fn fn, void *context, int64_t n, int64_t cost) noexcept {
  if (n <= 0)
    return;
  int threads = nnc_threads();
  if (threads == 1 || n == 1 || smallWork(n, cost) || tInsideParallel ||
      gPoolStopped.load(std::memory_order_relaxed)) {
    fn(context, 0, n);
    return;
  }
  thePool().run(fn, context, n, threads);
}

void nnc_set_threads(int threads) noexcept {
  gThreads.store(std::clamp(threads, 0, kMaxThreads), std::memory_order_relaxed);
}

int nnc_threads(void) noexcept {
  int threads = gThreads.load(std::memory_order_relaxed);
  return threads > 0 ? threads : hardwareThreads();
}

} // extern "C"
