// Process.h — running nnc as a process in the CLI tests: both streams
// captured, the exit status decoded, scratch directories cleaned up.
#pragma once

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>
#include <cstdio>
#include <fcntl.h>
#include <fstream>
#include <spawn.h>
#include <sstream>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

namespace nnc_test {

struct Run {
  int status = -1;
  std::string out, err;
  double seconds = 0;    ///< wall-clock
  double cpuSeconds = 0; ///< processor time of the process (user + system), steady under load
};

inline std::string slurp(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

/// A scratch directory removed at the end of the test.
struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/nnc-cli-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~TempDir() { std::system(("rm -rf '" + path + "'").c_str()); }
  std::string write(const std::string &name, const std::string &text) const {
    std::string p = path + "/" + name;
    std::ofstream(p, std::ios::binary) << text;
    return p;
  }
};

/// Writes an IDX file of unsigned bytes with dimensions `dims`.
inline void writeIdx(const std::string &path, const std::vector<uint32_t> &dims,
                     const std::vector<uint8_t> &data) {
  std::ofstream out(path, std::ios::binary);
  out.put(0).put(0).put(8).put(static_cast<char>(dims.size()));
  for (uint32_t d : dims)
    for (int s = 24; s >= 0; s -= 8)
      out.put(static_cast<char>(d >> s));
  out.write(reinterpret_cast<const char *>(data.data()), static_cast<std::streamsize>(data.size()));
}

/// Runs `binary` with `args` in directory `cwd`, capturing both streams;
/// `shell` is run by the shell first ("ulimit -f 100; ").
inline Run run(const std::string &binary, std::vector<std::string> args,
               const std::string &cwd = ".", const std::string &shell = "") {
  TempDir io;
  std::string outPath = io.path + "/out", errPath = io.path + "/err";
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, outPath.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  posix_spawn_file_actions_addopen(&actions, 2, errPath.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  std::string script = "cd '" + cwd + "' && " + shell + "exec \"$0\" \"$@\"";
  std::vector<std::string> argv{"/bin/sh", "-c", script, binary};
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<char *> cargv;
  for (std::string &a : argv)
    cargv.push_back(a.data());
  cargv.push_back(nullptr);
  auto start = std::chrono::steady_clock::now();
  pid_t pid = 0;
  Run result;
  REQUIRE(posix_spawn(&pid, "/bin/sh", &actions, nullptr, cargv.data(), environ) == 0);
  int status = 0;
  rusage usage{};
  ::wait4(pid, &status, 0, &usage);
  auto secs = [](const timeval &t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  result.cpuSeconds = secs(usage.ru_utime) + secs(usage.ru_stime);
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  posix_spawn_file_actions_destroy(&actions);
  result.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  result.out = slurp(outPath);
  result.err = slurp(errPath);
  return result;
}

#ifdef NNC_BINARY
/// Runs nnc with `args` in directory `cwd`, capturing both streams.
inline Run nnc(std::vector<std::string> args, const std::string &cwd = ".",
               const std::string &shell = "") {
  return run(NNC_BINARY, std::move(args), cwd, shell);
}
#endif

} // namespace nnc_test

using namespace nnc_test;
