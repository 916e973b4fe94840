// Distributed.cpp — data-parallel `--train` over MPI. The training loop is
// the runtime's (runtime/Training.cpp, DataParallel); this file provides its
// collective operations with MPI and starts and ends MPI.
//
// No process waits for ever: every collective operation is started
// non-blocking and polled, and one that has not completed within
// NNC_MPI_TIMEOUT seconds (default 600) ends the job with an error naming
// what it was waiting for. A process that dies is noticed sooner by mpirun,
// which then ends the others.
#include "driver/Distributed.h"

#include "driver/Session.h"

#include <algorithm>
#include <chrono>
#include <climits>
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <string>
#include <thread>
#include <unistd.h>

#ifdef NNC_MPI
#include <mpi.h>
#endif

namespace nnc {

#ifndef NNC_MPI

bool launchedByMpi() { return false; }

int threadsPerProcess() { return 1; }

int trainDistributed(const Program &, const RunOptions &, Diag &) {
  throw std::logic_error("internal error: nnc was built without MPI");
}

#else

namespace {

class MpiCollective final : public nnc_rt::Collective {
public:
  MpiCollective() {
    MPI_Comm_dup(MPI_COMM_WORLD, &comm_);
    MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &size_);
    if (const char *t = std::getenv("NNC_MPI_TIMEOUT")) {
      char *end = nullptr;
      double v = std::strtod(t, &end);
      if (end == t || *end != '\0' || !(v > 0))
        fail(std::string("NNC_MPI_TIMEOUT is '") + t + "': it must be a number of seconds > 0");
      timeout_ = v;
    }
    // A test hook: NNC_TEST_MPI_FAULT=die:RANK:STEP (the process kills
    // itself with SIGKILL) or hang:RANK:STEP (it stops answering), just
    // before that step's sums.
    if (const char *f = std::getenv("NNC_TEST_MPI_FAULT")) {
      std::string s = f;
      size_t a = s.find(':'), b = s.find(':', a == std::string::npos ? a : a + 1);
      if (a == std::string::npos || b == std::string::npos)
        fail("NNC_TEST_MPI_FAULT is '" + s + "': expected die:RANK:STEP or hang:RANK:STEP");
      faultKind_ = s.substr(0, a);
      faultRank_ = std::atoi(s.substr(a + 1, b - a - 1).c_str());
      faultStep_ = std::atoll(s.substr(b + 1).c_str());
    }
  }
  ~MpiCollective() override { MPI_Comm_free(&comm_); }

  int rank() const override { return rank_; }
  int size() const override { return size_; }

  std::vector<int> gather(int ok) override {
    std::vector<int> all(static_cast<size_t>(size_));
    MPI_Request r;
    check(MPI_Iallgather(&ok, 1, MPI_INT, all.data(), 1, MPI_INT, comm_, &r), "MPI_Iallgather");
    wait(r, "gathering every process's status");
    return all;
  }
  void broadcast(float *data, int64_t n) override {
    MPI_Request r;
    check(MPI_Ibcast(data, count(n), MPI_FLOAT, 0, comm_, &r), "MPI_Ibcast");
    wait(r, "receiving rank 0's state");
  }
  void broadcast(int64_t *data, int64_t n) override {
    MPI_Request r;
    check(MPI_Ibcast(data, count(n), MPI_INT64_T, 0, comm_, &r), "MPI_Ibcast");
    wait(r, "receiving rank 0's progress");
  }
  void sum(float *data, int64_t n) override {
    MPI_Request r;
    check(MPI_Iallreduce(MPI_IN_PLACE, data, count(n), MPI_FLOAT, MPI_SUM, comm_, &r),
          "MPI_Iallreduce");
    wait(r, "summing the gradients of step " + std::to_string(step_));
  }
  void sum(double *data, int64_t n) override {
    MPI_Request r;
    check(MPI_Iallreduce(MPI_IN_PLACE, data, count(n), MPI_DOUBLE, MPI_SUM, comm_, &r),
          "MPI_Iallreduce");
    wait(r, "summing the losses of step " + std::to_string(step_));
  }
  [[noreturn]] void abort(int code) override {
    std::cerr.flush();
    MPI_Abort(comm_, code);
    std::_Exit(code);
  }
  void beforeStep(int64_t step) override {
    step_ = step;
    if (rank_ != faultRank_ || step != faultStep_)
      return;
    if (faultKind_ == "die")
      std::raise(SIGKILL);
    if (faultKind_ == "hang")
      for (;;)
        ::pause();
  }

private:
  [[noreturn]] void fail(const std::string &message) {
    std::cerr << "nnc: error: process " << rank_ << " of " << size_ << ": " << message
              << std::endl;
    abort(1);
  }
  void check(int rc, const char *what) {
    if (rc == MPI_SUCCESS)
      return;
    char text[MPI_MAX_ERROR_STRING];
    int length = 0;
    MPI_Error_string(rc, text, &length);
    fail(std::string(what) + " failed: " + std::string(text, static_cast<size_t>(length)));
  }
  int count(int64_t n) {
    if (n > INT_MAX)
      fail("a buffer of " + std::to_string(n) + " numbers is more than one MPI call can send");
    return static_cast<int>(n);
  }
  /// Polls `r` until it completes, giving the processor away between polls
  /// (ranks may outnumber cores); ends the job after the timeout.
  void wait(MPI_Request &r, const std::string &what) {
    auto start = std::chrono::steady_clock::now();
    for (;;) {
      int done = 0;
      check(MPI_Test(&r, &done, MPI_STATUS_IGNORE), "MPI_Test");
      if (done)
        return;
      if (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() >
          timeout_)
        fail("no answer from the other processes after " + std::to_string(int64_t(timeout_)) +
             " s while " + what +
             ": a process has died or hangs (NNC_MPI_TIMEOUT sets the limit)");
      std::this_thread::yield();
    }
  }

  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1;
  double timeout_ = 600;
  int64_t step_ = 0;
  std::string faultKind_;
  int faultRank_ = -1;
  int64_t faultStep_ = -1;
};

} // namespace

bool launchedByMpi() {
  return std::getenv("OMPI_COMM_WORLD_SIZE") != nullptr || std::getenv("PMIX_RANK") != nullptr;
}

int threadsPerProcess() {
  int local = 1;
  if (const char *n = std::getenv("OMPI_COMM_WORLD_LOCAL_SIZE"))
    local = std::max(1, std::atoi(n));
  return std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / local);
}

int trainDistributed(const Program &program, const RunOptions &options, Diag &diag) {
  int provided = 0;
  if (MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
    diag.error(program.model.loc, "cannot start MPI (MPI_Init_thread failed)");
    return 1;
  }
  int rc = 1;
  {
    MpiCollective comm;
    std::string error;
    bool overCap = false;
    std::unique_ptr<Session> s =
        Session::create(program, program.data.batch, error, nullptr, true, &overCap);
    if (!s && comm.rank() == 0)
      diag.error(program.model.loc, error,
                 overCap ? nnc_rt::buffersOverCapHint("--batch N") : "");
    std::vector<int> compiled = comm.gather(s != nullptr);
    bool everyone = true;
    for (int c : compiled)
      everyone = everyone && c != 0;
    if (everyone) {
      if (comm.rank() == 0)
        std::cerr << "compiled " << program.model.name << " in "
                  << static_cast<int>(s->compileMs()) << " ms in each of " << comm.size()
                  << (comm.size() == 1 ? " process\n" : " processes\n");
      nnc_rt::RunOptions run = runtimeOptions(program, options);
      run.progress = options.progress && comm.rank() == 0;
      nnc_rt::DataParallel dp;
      dp.comm = &comm;
      dp.grad = s->gradStep();
      dp.update = s->applyUpdate();
      run.parallel = &dp;
      rc = nnc_rt::train(s->state(), run, reporter(program, diag));
    }
  }
  MPI_Finalize();
  return rc;
}

#endif

} // namespace nnc
