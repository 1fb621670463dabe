/* A FUSE file system that serves one executable, then hangs: what a host
 * with a dead NFS or FUSE mount gives the agent. Every process reading a
 * file there (open, read) sleeps in the kernel until the server answers
 * or dies.
 *
 *   hung_fuse MOUNTPOINT SOURCE
 *
 * Serves MOUNTPOINT/prog, a copy of SOURCE (read into memory at start,
 * mode 0755). Prints "ready" once mounted. After SIGUSR1, no request is
 * answered: the single-threaded loop blocks in the handler of the next
 * one. Killing the server aborts the connection (pending requests fail
 * with ENOTCONN); run `umount -l MOUNTPOINT` after it.
 */
#define FUSE_USE_VERSION 35
#include <errno.h>
#include <fuse3/fuse.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *content;
static size_t content_size;
static volatile sig_atomic_t hung;

static void hang_if_asked(void) {
  while (hung) pause();
}

static int fs_getattr(const char *path, struct stat *st, struct fuse_file_info *fi) {
  (void)fi;
  hang_if_asked();
  memset(st, 0, sizeof(*st));
  if (strcmp(path, "/") == 0) {
    st->st_mode = S_IFDIR | 0755;
    st->st_nlink = 2;
    return 0;
  }
  if (strcmp(path, "/prog") == 0) {
    st->st_mode = S_IFREG | 0755;
    st->st_nlink = 1;
    st->st_size = (off_t)content_size;
    return 0;
  }
  return -ENOENT;
}

static int fs_open(const char *path, struct fuse_file_info *fi) {
  hang_if_asked();
  if (strcmp(path, "/prog") != 0) return -ENOENT;
  /* Page cache kept, as a real file system's would be. */
  fi->keep_cache = 1;
  return 0;
}

static int fs_read(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi) {
  (void)path;
  (void)fi;
  hang_if_asked();
  if ((size_t)off >= content_size) return 0;
  if (size > content_size - (size_t)off) size = content_size - (size_t)off;
  memcpy(buf, content + off, size);
  return (int)size;
}

static int fs_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off,
                      struct fuse_file_info *fi, enum fuse_readdir_flags flags) {
  (void)off;
  (void)fi;
  (void)flags;
  hang_if_asked();
  if (strcmp(path, "/") != 0) return -ENOENT;
  fill(buf, ".", NULL, 0, 0);
  fill(buf, "..", NULL, 0, 0);
  fill(buf, "prog", NULL, 0, 0);
  return 0;
}

static void *fs_init(struct fuse_conn_info *conn, struct fuse_config *cfg) {
  (void)conn;
  cfg->kernel_cache = 1;
  printf("ready\n");
  fflush(stdout);
  return NULL;
}

static const struct fuse_operations ops = {
    .getattr = fs_getattr,
    .open = fs_open,
    .read = fs_read,
    .readdir = fs_readdir,
    .init = fs_init,
};

static void on_usr1(int sig) {
  (void)sig;
  hung = 1;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: hung_fuse MOUNTPOINT SOURCE\n");
    return 2;
  }
  FILE *f = fopen(argv[2], "rb");
  if (!f) {
    perror(argv[2]);
    return 1;
  }
  fseek(f, 0, SEEK_END);
  content_size = (size_t)ftell(f);
  fseek(f, 0, SEEK_SET);
  content = malloc(content_size);
  if (!content || fread(content, 1, content_size, f) != content_size) {
    fprintf(stderr, "reading %s failed\n", argv[2]);
    return 1;
  }
  fclose(f);
  /* SA_RESTART off: pause() in a handler returns on the next signal. */
  struct sigaction sa = {.sa_handler = on_usr1};
  sigaction(SIGUSR1, &sa, NULL);
  /* Foreground, single-threaded, other users allowed (the test's
   * processes run as root anyway). */
  char *fargv[] = {argv[0], "-f", "-s", "-o", "allow_other", argv[1], NULL};
  return fuse_main(6, fargv, &ops, NULL);
}
