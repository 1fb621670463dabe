// Context-switch-heavy load for the spin benchmark: two threads bounce one
// byte through a pair of pipes, so every round trip is two blocking reads,
// two writes and two context switches. Prints round trips per second.
//   pingpong [round_trips]   (default 200000)
#include <pthread.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

int main(int argc, char** argv) {
  const long n = argc > 1 ? atol(argv[1]) : 200000;
  int ab[2], ba[2];
  if (pipe(ab) != 0 || pipe(ba) != 0) {
    perror("pipe");
    return 1;
  }
  std::thread echo([&] {
    char c;
    for (long i = 0; i < n; ++i) {
      if (read(ab[0], &c, 1) != 1 || write(ba[1], &c, 1) != 1) abort();
    }
  });
  const auto t0 = std::chrono::steady_clock::now();
  char c = 'x';
  for (long i = 0; i < n; ++i) {
    if (write(ab[1], &c, 1) != 1 || read(ba[0], &c, 1) != 1) abort();
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  echo.join();
  printf("%.0f\n", n / s);
  return 0;
}
