// pinNetns(path, callback): a new network namespace with `lo` up, pinned by a bind mount of its
// nsfs file on `path` (an existing empty file), made without a process: what `unshare --net=PATH
// ip link set lo up` does in two execs. The work runs on a thread of its own, created for it and
// ended after it (a namespace changed on a thread-pool thread would stay changed for whatever that
// thread runs next), so the event loop only queues it. callback(err) on completion.
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "util.h"

struct netns_req {
  napi_async_work work;
  napi_ref callback;
  char *path;
  int err;
  const char *failed;
};

static void *pin_thread(void *arg) {
  struct netns_req *r = arg;
  if (unshare(CLONE_NEWNET) < 0) {
    r->err = errno;
    r->failed = "unshare";
    return NULL;
  }
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) {
    r->err = errno;
    r->failed = "socket";
    return NULL;
  }
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0 || (ifr.ifr_flags |= IFF_UP, ioctl(s, SIOCSIFFLAGS, &ifr) < 0)) {
    r->err = errno;
    r->failed = "ioctl(SIOCSIFFLAGS lo)";
    close(s);
    return NULL;
  }
  close(s);
  char self[64];
  snprintf(self, sizeof self, "/proc/self/task/%ld/ns/net", (long)syscall(SYS_gettid));
  if (mount(self, r->path, NULL, MS_BIND, NULL) < 0) {
    r->err = errno;
    r->failed = "mount";
  }
  return NULL;
}

static void pin_execute(napi_env env, void *data) {
  struct netns_req *r = data;
  pthread_t t;
  int e = pthread_create(&t, NULL, pin_thread, r);
  if (e != 0) {
    r->err = e;
    r->failed = "pthread_create";
    return;
  }
  pthread_join(t, NULL);
}

static void free_req(napi_env env, struct netns_req *r) {
  if (r->work) napi_delete_async_work(env, r->work);
  if (r->callback) napi_delete_reference(env, r->callback);
  free(r->path);
  free(r);
}

static void pin_complete(napi_env env, napi_status status, void *data) {
  struct netns_req *r = data;
  call_back_errno(env, r->callback, r->err, r->failed, r->path);
  free_req(env, r);
}

static napi_value pin_netns(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  struct netns_req *r = calloc(1, sizeof *r);
  if (r == NULL) {
    throw_errno(env, ENOMEM, "pinNetns", NULL);
    return NULL;
  }
  if ((r->path = get_string(env, argv[0], "path")) == NULL) goto fail;
  if (!queue_with_callback(env, argv[1], "berth-netns", pin_execute, pin_complete, r, &r->callback, &r->work))
    goto fail;
  return NULL;
fail:
  free_req(env, r);
  return NULL;
}

bool init_netns(napi_env env, napi_value exports) {
  return export_fn(env, exports, "pinNetns", pin_netns);
}
