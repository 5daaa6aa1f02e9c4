// pinNetns(path, callback): a new network namespace with `lo` up, pinned by a bind mount of its
// nsfs file on `path` (an existing empty file), made without a process: what `unshare --net=PATH
// ip link set lo up` does in two execs. The work runs on a thread of its own, created for it and
// ended after it (a namespace changed on a thread-pool thread would stay changed for whatever that
// thread runs next), so the event loop only queues it. callback(err) on completion.
//
// pinIpcUts(ipcPath, utsPath, hostname, callback): the same for a pod's IPC and UTS namespaces
// (either path may be null: that one is not made), the UTS one with `hostname` set; what lets a
// pod run without an infra container (CRI-O's pinns). Both are made on one thread: unshare of
// both, sethostname, then one bind mount each.
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
  // pinIpcUts only
  char *uts_path;
  char *hostname;
  const char *failed_path;
};

static bool bind_own_ns(struct netns_req *r, const char *type, const char *target) {
  char self[64];
  snprintf(self, sizeof self, "/proc/self/task/%ld/ns/%s", (long)syscall(SYS_gettid), type);
  if (mount(self, target, NULL, MS_BIND, NULL) < 0) {
    r->err = errno;
    r->failed = "mount";
    r->failed_path = target;
    return false;
  }
  return true;
}

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
  bind_own_ns(r, "net", r->path);
  return NULL;
}

static void *pin_ipc_uts_thread(void *arg) {
  struct netns_req *r = arg;
  int flags = (r->path ? CLONE_NEWIPC : 0) | (r->uts_path ? CLONE_NEWUTS : 0);
  if (unshare(flags) < 0) {
    r->err = errno;
    r->failed = "unshare";
    return NULL;
  }
  if (r->uts_path && r->hostname && sethostname(r->hostname, strlen(r->hostname)) < 0) {
    r->err = errno;
    r->failed = "sethostname";
    return NULL;
  }
  if (r->path && !bind_own_ns(r, "ipc", r->path)) return NULL;
  if (r->uts_path && !bind_own_ns(r, "uts", r->uts_path)) {
    // the IPC pin alone is of no use: undo it, so a failure leaves no mount behind
    if (r->path) umount2(r->path, MNT_DETACH);
    return NULL;
  }
  return NULL;
}

static void run_on_own_thread(struct netns_req *r, void *(*fn)(void *)) {
  pthread_t t;
  int e = pthread_create(&t, NULL, fn, r);
  if (e != 0) {
    r->err = e;
    r->failed = "pthread_create";
    return;
  }
  pthread_join(t, NULL);
}

static void pin_ipc_uts_execute(napi_env env, void *data) {
  run_on_own_thread(data, pin_ipc_uts_thread);
}

static void pin_execute(napi_env env, void *data) {
  run_on_own_thread(data, pin_thread);
}

static void free_req(napi_env env, struct netns_req *r) {
  if (r->work) napi_delete_async_work(env, r->work);
  if (r->callback) napi_delete_reference(env, r->callback);
  free(r->path);
  free(r->uts_path);
  free(r->hostname);
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

static void pin_ipc_uts_complete(napi_env env, napi_status status, void *data) {
  struct netns_req *r = data;
  call_back_errno(env, r->callback, r->err, r->failed, r->failed_path);
  free_req(env, r);
}

static napi_value pin_ipc_uts(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (!get_args(env, info, 4, argv)) return NULL;
  struct netns_req *r = calloc(1, sizeof *r);
  if (r == NULL) {
    throw_errno(env, ENOMEM, "pinIpcUts", NULL);
    return NULL;
  }
  bool ok = true;
  r->path = get_optional_string(env, argv[0], "ipcPath", &ok);
  if (!ok) goto fail;
  r->uts_path = get_optional_string(env, argv[1], "utsPath", &ok);
  if (!ok) goto fail;
  r->hostname = get_optional_string(env, argv[2], "hostname", &ok);
  if (!ok) goto fail;
  if (r->path == NULL && r->uts_path == NULL) {
    napi_throw_type_error(env, NULL, "pinIpcUts: neither an IPC nor a UTS path");
    goto fail;
  }
  if (!queue_with_callback(env, argv[3], "berth-ipc-uts", pin_ipc_uts_execute, pin_ipc_uts_complete, r,
                           &r->callback, &r->work))
    goto fail;
  return NULL;
fail:
  free_req(env, r);
  return NULL;
}

bool init_netns(napi_env env, napi_value exports) {
  return export_fn(env, exports, "pinNetns", pin_netns) && export_fn(env, exports, "pinIpcUts", pin_ipc_uts);
}
