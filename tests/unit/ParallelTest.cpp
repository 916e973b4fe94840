// ParallelTest.cpp — the runtime's thread pool (nnc_parallel_for).
//
// Catch2's assertions are not thread-safe, so loop bodies only record what
// they see; the checks run on the test's own thread afterwards.
#include "Parallel.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <utility>
#include <vector>

namespace {

/// Enough work per iteration that no call below runs inline for being small.
constexpr int64_t kBig = 1000000;

/// Sets the thread count for a scope and puts back "the number of cores".
struct Threads {
  explicit Threads(int n) { nnc_set_threads(n); }
  ~Threads() { nnc_set_threads(0); }
};

/// What one nnc_parallel_for saw: every call of the body, and how often each
/// index was visited.
struct Record {
  explicit Record(int64_t n) : visits(new std::atomic<int>[size_t(n)]()), n(n) {}
  std::unique_ptr<std::atomic<int>[]> visits;
  int64_t n;
  std::mutex mutex;
  std::vector<std::pair<int64_t, int64_t>> ranges; ///< sorted after the call
  std::set<std::thread::id> threadIds;

  static void body(void *context, int64_t begin, int64_t end) {
    auto *r = static_cast<Record *>(context);
    {
      std::lock_guard<std::mutex> lock(r->mutex);
      r->ranges.emplace_back(begin, end);
      r->threadIds.insert(std::this_thread::get_id());
    }
    for (int64_t i = begin; i < end; ++i)
      if (i >= 0 && i < r->n)
        r->visits[size_t(i)].fetch_add(1, std::memory_order_relaxed);
  }

  /// Runs the loop and sorts the ranges.
  void run(int64_t cost) {
    nnc_parallel_for(&Record::body, this, n, cost);
    std::sort(ranges.begin(), ranges.end());
  }

  /// Every index visited exactly once.
  bool eachOnce() const {
    for (int64_t i = 0; i < n; ++i)
      if (visits[size_t(i)].load() != 1)
        return false;
    return true;
  }

  /// The ranges tile [0, n), none empty, and their sizes differ by at most one.
  bool tiles() const {
    int64_t at = 0, shortest = n, longest = 0;
    for (auto [begin, end] : ranges) {
      if (begin != at || end <= begin)
        return false;
      shortest = std::min(shortest, end - begin);
      longest = std::max(longest, end - begin);
      at = end;
    }
    return at == n && (ranges.empty() || longest - shortest <= 1);
  }
};

} // namespace

TEST_CASE("nnc_parallel_for visits every index exactly once, in at most `threads` chunks", "[threads]") {
  for (int threads : {1, 2, 3, 8}) {
    Threads scope(threads);
    for (int64_t n : {0, 1, 2, 7, 1000, 100003}) {
      CAPTURE(threads, n);
      Record r(n);
      r.run(kBig);
      CHECK(r.eachOnce());
      CHECK(r.tiles());
      CHECK(int64_t(r.ranges.size()) == std::min<int64_t>(threads, n));
      CHECK(r.threadIds.size() <= size_t(threads));
    }
  }
}

TEST_CASE("the partition depends only on n and the thread count", "[threads]") {
  Threads scope(3);
  Record r(7);
  r.run(kBig);
  using R = std::vector<std::pair<int64_t, int64_t>>;
  CHECK(r.ranges == R{{0, 3}, {3, 5}, {5, 7}});
  for (int i = 0; i < 20; ++i) {
    Record again(7);
    again.run(kBig);
    CHECK(again.ranges == r.ranges);
  }
}

TEST_CASE("small work runs inline on the calling thread, in one call", "[threads]") {
  Threads scope(8);
  for (auto [n, cost] : {std::pair<int64_t, int64_t>{100, 1}, {29999, 1}, {100, 299}, {5000, 0},
                         {10, -7}}) {
    CAPTURE(n, cost);
    Record r(n);
    r.run(cost);
    CHECK(r.eachOnce());
    REQUIRE(r.ranges.size() == 1);
    CHECK(r.ranges[0] == std::pair<int64_t, int64_t>{0, n});
    CHECK(r.threadIds == std::set<std::thread::id>{std::this_thread::get_id()});
  }
  // At the threshold it splits.
  Record r(30000);
  r.run(1);
  CHECK(r.eachOnce());
  CHECK(r.ranges.size() == 8);
}

namespace {

/// The nested-call test: an outer loop over rows whose body runs an inner
/// nnc_parallel_for over each row's columns.
struct Nest {
  static constexpr int64_t kRows = 8, kColumns = 1000;
  std::atomic<int> visits[kRows * kColumns] = {};
  std::atomic<int> innerCalls{0}, innerNotInline{0};

  struct Row {
    Nest *nest;
    int64_t row;
    std::thread::id thread; ///< the thread running the outer chunk
  };

  static void inner(void *context, int64_t begin, int64_t end) {
    auto *r = static_cast<Row *>(context);
    r->nest->innerCalls.fetch_add(1);
    if (std::this_thread::get_id() != r->thread || begin != 0 || end != kColumns)
      r->nest->innerNotInline.fetch_add(1);
    for (int64_t j = begin; j < end; ++j)
      r->nest->visits[r->row * kColumns + j].fetch_add(1);
  }

  static void outer(void *context, int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      Row row{static_cast<Nest *>(context), i, std::this_thread::get_id()};
      nnc_parallel_for(&Nest::inner, &row, kColumns, kBig);
    }
  }
};

} // namespace

TEST_CASE("a nested nnc_parallel_for runs inline on the thread that calls it", "[threads]") {
  Threads scope(4);
  auto nest = std::make_unique<Nest>();
  nnc_parallel_for(&Nest::outer, nest.get(), Nest::kRows, kBig);
  CHECK(nest->innerCalls.load() == Nest::kRows);
  CHECK(nest->innerNotInline.load() == 0);
  int wrong = 0;
  for (auto &v : nest->visits)
    wrong += v.load() != 1;
  CHECK(wrong == 0);
}

TEST_CASE("nnc_set_threads: 0 is the number of cores, and the count is clamped", "[threads]") {
  int cores = int(std::max(1u, std::thread::hardware_concurrency()));
  {
    Threads scope(3);
    CHECK(nnc_threads() == 3);
  }
  CHECK(nnc_threads() == cores);
  nnc_set_threads(-5);
  CHECK(nnc_threads() == cores);
  nnc_set_threads(1 << 20);
  CHECK(nnc_threads() == 1024);
  nnc_set_threads(0);
  CHECK(nnc_threads() == cores);
}

TEST_CASE("changing the thread count between calls", "[threads]") {
  for (int threads : {8, 2, 5, 1, 3, 0, 2}) {
    Threads scope(threads);
    int expected = nnc_threads();
    CAPTURE(threads);
    for (int repeat = 0; repeat < 5; ++repeat) {
      Record r(10007);
      r.run(kBig);
      CHECK(r.eachOnce());
      CHECK(r.tiles());
      CHECK(int64_t(r.ranges.size()) == std::min<int64_t>(expected, 10007));
    }
  }
}

TEST_CASE("workers run chunks at the same time as the caller", "[threads]") {
  // Every chunk waits until all have started, which only finishes if each
  // runs on its own thread. The timeout turns a broken pool into a failure
  // instead of a hang; it is not a timing assertion.
  for (int threads : {2, 3, 4}) {
    Threads scope(threads);
    CAPTURE(threads);
    struct Barrier {
      std::mutex mutex;
      std::condition_variable cv;
      int arrived = 0, expected = 0;
      bool timedOut = false;
    } barrier;
    barrier.expected = threads;
    nnc_parallel_for(
        [](void *context, int64_t, int64_t) {
          auto *b = static_cast<Barrier *>(context);
          std::unique_lock<std::mutex> lock(b->mutex);
          ++b->arrived;
          b->cv.notify_all();
          if (!b->cv.wait_for(lock, std::chrono::seconds(60),
                              [&] { return b->arrived == b->expected; }))
            b->timedOut = true;
        },
        &barrier, threads, kBig);
    CHECK(barrier.arrived == threads);
    CHECK_FALSE(barrier.timedOut);
  }
}

TEST_CASE("per-index results are the same on 1, 2, 3 and 8 threads", "[threads]") {
  // Each chunk sums a float series per index in a fixed order; the sums must
  // match bit for bit whatever the split.
  constexpr int64_t n = 4099;
  auto compute = [](int threads) {
    Threads scope(threads);
    std::vector<float> out(n);
    nnc_parallel_for(
        [](void *context, int64_t begin, int64_t end) {
          auto *o = static_cast<float *>(context);
          for (int64_t i = begin; i < end; ++i) {
            float sum = 0;
            for (int j = 1; j <= 100; ++j)
              sum += std::sin(float(i) * 0.001f * float(j)) / float(j);
            o[i] = sum;
          }
        },
        out.data(), n, 300);
    return out;
  };
  std::vector<float> one = compute(1);
  CHECK(compute(2) == one);
  CHECK(compute(3) == one);
  CHECK(compute(8) == one);
}

TEST_CASE("two host threads may call nnc_parallel_for at once", "[threads]") {
  Threads scope(4);
  constexpr int kCalls = 200;
  struct Caller {
    int wrong = 0;
    void operator()() {
      for (int call = 0; call < kCalls; ++call) {
        Record r(1000 + call);
        r.run(kBig);
        if (!r.eachOnce() || !r.tiles() || r.ranges.size() != 4)
          ++wrong;
      }
    }
  };
  Caller a, b;
  std::thread ta(std::ref(a)), tb(std::ref(b));
  ta.join();
  tb.join();
  CHECK(a.wrong == 0);
  CHECK(b.wrong == 0);
}
