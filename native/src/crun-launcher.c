// berth-crun-v1: runs crun on a cgroup v1/v2 hybrid host with cgroup2's controller list hidden,
// as the shell launcher of internal/runtime/crun-hybrid.ts does, but without that launcher's shell,
// unshare and mount processes (four execs per crun call, ~16 ms here). It enters a private mount
// namespace (nothing propagates back to the host), binds /dev/null over
// <cgroup2 mount>/cgroup.controllers and execs the runtime with the arguments it was given.
//
// berthd copies this program to <state>/crun-v1 and writes its settings beside it, in
// <state>/crun-v1.conf: two lines, the cgroup2 mount and the runtime binary. The copy finds them
// through /proc/self/exe, so it can be handed to conmon and runc's callers as a plain binary path.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

static void die(const char *what, const char *arg) {
  fprintf(stderr, "berth-crun-v1: %s %s: %s\n", what, arg, strerror(errno));
  exit(125);
}

int main(int argc, char **argv) {
  (void)argc;
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n < 0) die("readlink", "/proc/self/exe");
  self[n] = 0;

  char conf[PATH_MAX + 8];
  if (snprintf(conf, sizeof conf, "%s.conf", self) >= (int)sizeof conf) {
    errno = ENAMETOOLONG;
    die("settings", self);
  }
  char buf[2 * PATH_MAX + 4];
  int fd = open(conf, O_RDONLY | O_CLOEXEC);
  if (fd < 0) die("open", conf);
  n = read(fd, buf, sizeof buf - 1);
  if (n < 0) die("read", conf);
  close(fd);
  buf[n] = 0;

  // line 1: the cgroup2 mount; line 2: the runtime binary
  char *unified = buf;
  char *runtime = strchr(buf, '\n');
  if (runtime) *runtime++ = 0;
  char *end = runtime ? strchr(runtime, '\n') : NULL;
  if (end) *end = 0;
  if (!runtime || unified[0] != '/' || runtime[0] != '/') {
    errno = EINVAL;
    die("settings", conf);
  }

  char controllers[PATH_MAX];
  if (snprintf(controllers, sizeof controllers, "%s/cgroup.controllers", unified) >= (int)sizeof controllers) {
    errno = ENAMETOOLONG;
    die("settings", conf);
  }
  if (unshare(CLONE_NEWNS) < 0) die("unshare", "CLONE_NEWNS");
  // as unshare(1) does by default: the new namespace's mounts do not propagate back to the host
  if (mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) die("make-rprivate", "/");
  if (mount("/dev/null", controllers, NULL, MS_BIND, NULL) < 0) die("bind /dev/null over", controllers);

  argv[0] = runtime;
  execv(runtime, argv);
  die("exec", runtime);
  return 125;
}
