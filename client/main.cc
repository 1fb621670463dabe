#include <grpc/grpc.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "client/runner.h"

int main(int argc, char** argv) {
  // The CLI is a short process: it holds gRPC up from here and leaves with
  // _exit once its output is flushed. Otherwise the last channel's
  // destruction shuts gRPC down (joining its threads, with a shutdown
  // thread that polls in 1-2 ms sleeps), and static destructors run while
  // those threads are still alive: about 3 ms of every one-RPC command
  // (tests/bench/cli_start.sh), for nothing the process keeps.
  grpc_init();
  int rc = vigil::cli::Main(argc, argv);
  // Output that could not be written (a full disk, a closed pipe) is a
  // failure, not a silent exit 0.
  errno = 0;
  if ((fflush(stdout) != 0 || ferror(stdout)) && rc == vigil::cli::kExitOk) {
    fprintf(stderr, "vigil: writing the output failed%s%s\n", errno ? ": " : "",
            errno ? strerror(errno) : "");
    rc = vigil::cli::kExitFailed;
  }
  fflush(stderr);
  _exit(rc);
}
