// Process creation off the event loop, and exits learned from pidfds.
//
// Node's child_process.spawn forks on the main thread: the kernel copies the page tables of the
// whole daemon (tens of ms on a busy node) while every RPC waits. Here the child is made with
// posix_spawn (glibc: clone(CLONE_VM | CLONE_VFORK), no page-table copy) on a libuv thread-pool
// thread, so the main thread only queues the work and gets a callback with the pid.
//
// Every child is reaped by one reaper thread that waits on the children's pidfds with epoll and
// hands (pid, exit code, signal) to JavaScript through a thread-safe function, so no child stays a
// zombie and no JS timer polls. The same thread can watch a process that is not our child (a
// container's conmon) and report when it is gone.
//
// The child gets: the fds the caller maps (dup2'd to 0..n-1, /dev/null for -1), every other fd
// closed (closefrom), a signal mask emptied and every signal's disposition reset to default (Node
// ignores SIGPIPE, which a child would otherwise inherit), the given environment only, the given
// working dir, and its own session (setsid) or process group when asked.
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef P_PIDFD
#define P_PIDFD 3
#endif

static int pidfd_open_(pid_t pid) { return (int)syscall(SYS_pidfd_open, pid, 0); }

// ---- the reaper ----

struct exit_msg {
  int pid;
  int code;    // exit status when exited normally, else -1
  int signal;  // terminating signal, else 0
  int watched; // 1 for watchPid (not our child): code/signal unknown
  int pidfd;   // a child's pidfd, still unreaped: reaped on the main thread (see deliver_exit)
};

struct watch {
  int pidfd;
  pid_t pid;
  int child; // 1: our child, reap it; 0: only report that it ended
};

static pthread_mutex_t reaper_lock = PTHREAD_MUTEX_INITIALIZER;
static int reaper_epfd = -1;
static napi_threadsafe_function reaper_tsfn = NULL;
// Outstanding watches; touched on the main thread only (spawn completion, exit delivery).
static int64_t outstanding = 0;

// Reaps the zombie a message stands for (its status was read with WNOWAIT) and closes its pidfd.
static void reap_msg(struct exit_msg *m) {
  if (m->pidfd < 0) return;
  siginfo_t si;
  int r;
  do r = waitid((idtype_t)P_PIDFD, (id_t)m->pidfd, &si, WEXITED | WNOHANG); while (r < 0 && errno == EINTR);
  close(m->pidfd);
  m->pidfd = -1;
}

static void *reaper_main(void *arg) {
  (void)arg;
  struct epoll_event evs[64];
  for (;;) {
    int n = epoll_wait(reaper_epfd, evs, 64, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      return NULL;
    }
    for (int i = 0; i < n; i++) {
      struct watch *w = evs[i].data.ptr;
      struct exit_msg *m = calloc(1, sizeof *m);
      if (m == NULL) continue; // retried: the pidfd stays readable
      m->pid = w->pid;
      m->code = -1;
      m->pidfd = -1;
      epoll_ctl(reaper_epfd, EPOLL_CTL_DEL, w->pidfd, NULL);
      if (w->child) {
        // Read the status but leave the child a zombie (WNOWAIT): its pid cannot be reused, so a
        // kill() from JS before it has seen this exit cannot hit another process. The main thread
        // reaps it just before JS is told.
        siginfo_t si;
        memset(&si, 0, sizeof si);
        int r;
        do r = waitid((idtype_t)P_PIDFD, (id_t)w->pidfd, &si, WEXITED | WNOWAIT); while (r < 0 && errno == EINTR);
        if (r == 0) {
          if (si.si_code == CLD_EXITED) m->code = si.si_status;
          else m->signal = si.si_status;
        }
        m->pidfd = w->pidfd;
      } else {
        m->watched = 1;
        close(w->pidfd);
      }
      free(w);
      pthread_mutex_lock(&reaper_lock);
      napi_status st = napi_call_threadsafe_function(reaper_tsfn, m, napi_tsfn_nonblocking);
      pthread_mutex_unlock(&reaper_lock);
      if (st != napi_ok) {
        reap_msg(m);
        free(m);
      }
    }
  }
  return NULL;
}

static void deliver_exit(napi_env env, napi_value js_cb, void *context, void *data) {
  struct exit_msg *m = data;
  reap_msg(m);
  if (env != NULL && js_cb != NULL) {
    if (outstanding > 0 && --outstanding == 0) napi_unref_threadsafe_function(env, reaper_tsfn);
    napi_value argv[4], undef;
    napi_create_int32(env, m->pid, &argv[0]);
    napi_create_int32(env, m->code, &argv[1]);
    napi_create_int32(env, m->signal, &argv[2]);
    napi_get_boolean(env, m->watched != 0, &argv[3]);
    napi_get_undefined(env, &undef);
    napi_call_function(env, undef, js_cb, 4, argv, NULL);
  }
  free(m);
}

// Starts the reaper thread and its thread-safe function on first use; onExit(pid, code, signal,
// watched) is the JS function that receives every exit.
static napi_value set_exit_handler(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  napi_value name;
  napi_create_string_utf8(env, "berth-reaper", NAPI_AUTO_LENGTH, &name);
  pthread_mutex_lock(&reaper_lock);
  if (reaper_tsfn != NULL) {
    // The addon was loaded again (another module registry, e.g. a test runner's): the newest
    // handler gets every exit from now on; what was queued for the old one is dropped with it.
    napi_threadsafe_function old = reaper_tsfn, fresh;
    if (napi_create_threadsafe_function(env, argv[0], NULL, name, 0, 1, NULL, NULL, NULL, deliver_exit,
                                        &fresh) != napi_ok) {
      pthread_mutex_unlock(&reaper_lock);
      return NULL;
    }
    reaper_tsfn = fresh;
    pthread_mutex_unlock(&reaper_lock);
    if (outstanding == 0) napi_unref_threadsafe_function(env, fresh);
    napi_release_threadsafe_function(old, napi_tsfn_abort);
    return NULL;
  }
  int epfd = epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) {
    pthread_mutex_unlock(&reaper_lock);
    throw_errno(env, errno, "epoll_create1", NULL);
    return NULL;
  }
  if (napi_create_threadsafe_function(env, argv[0], NULL, name, 0, 1, NULL, NULL, NULL, deliver_exit,
                                      &reaper_tsfn) != napi_ok) {
    close(epfd);
    pthread_mutex_unlock(&reaper_lock);
    return NULL;
  }
  // Nothing watched yet: the reaper must not keep the process alive.
  napi_unref_threadsafe_function(env, reaper_tsfn);
  reaper_epfd = epfd;
  pthread_t t;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old); // the reaper never takes the process's signals
  int err = pthread_create(&t, &attr, reaper_main, NULL);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  pthread_attr_destroy(&attr);
  pthread_mutex_unlock(&reaper_lock);
  if (err != 0) {
    throw_errno(env, err, "pthread_create", NULL);
    return NULL;
  }
  return NULL;
}

// Adds a pidfd to the reaper. Main thread only (it counts outstanding watches).
static int watch_pidfd(napi_env env, int pidfd, pid_t pid, int child) {
  struct watch *w = malloc(sizeof *w);
  if (w == NULL) return ENOMEM;
  w->pidfd = pidfd;
  w->pid = pid;
  w->child = child;
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = w};
  if (outstanding++ == 0) napi_ref_threadsafe_function(env, reaper_tsfn);
  if (epoll_ctl(reaper_epfd, EPOLL_CTL_ADD, pidfd, &ev) < 0) {
    int e = errno;
    if (--outstanding == 0) napi_unref_threadsafe_function(env, reaper_tsfn);
    free(w);
    return e;
  }
  return 0;
}

// watchPid(pid): reports through the exit handler (watched = true) once pid has ended. Returns
// false when there is no such process.
static napi_value watch_pid(napi_env env, napi_callback_info info) {
  napi_value argv[1], result;
  if (!get_args(env, info, 1, argv)) return NULL;
  int64_t pid;
  if (!get_int64(env, argv[0], "pid", &pid)) return NULL;
  if (reaper_tsfn == NULL) {
    napi_throw_error(env, "EINVAL", "setExitHandler was not called");
    return NULL;
  }
  int fd = pidfd_open_((pid_t)pid);
  if (fd < 0) {
    if (errno == ESRCH) {
      napi_get_boolean(env, false, &result);
      return result;
    }
    throw_errno(env, errno, "pidfd_open", NULL);
    return NULL;
  }
  fcntl(fd, F_SETFD, FD_CLOEXEC);
  int e = watch_pidfd(env, fd, (pid_t)pid, 0);
  if (e != 0) {
    close(fd);
    throw_errno(env, e, "epoll_ctl", NULL);
    return NULL;
  }
  napi_get_boolean(env, true, &result);
  return result;
}

// ---- spawn ----

struct spawn_req {
  char *file;
  char **argv;
  char **envp;
  char *cwd;
  int *fds; // child fd i <- parent fd fds[i], -1: /dev/null
  size_t nfds;
  int setsid;
  int setpgid;
  // results
  pid_t pid;
  int pidfd;
  int err;
  const char *failed; // which call failed
  napi_async_work work;
  napi_ref callback;
};

static void free_strv(char **v) {
  if (v == NULL) return;
  for (char **p = v; *p != NULL; p++) free(*p);
  free(v);
}

static void free_req(napi_env env, struct spawn_req *r) {
  free(r->file);
  free_strv(r->argv);
  free_strv(r->envp);
  free(r->cwd);
  free(r->fds);
  if (r->callback != NULL) napi_delete_reference(env, r->callback);
  if (r->work != NULL) napi_delete_async_work(env, r->work);
  free(r);
}

static void spawn_execute(napi_env env, void *data) {
  struct spawn_req *r = data;
  r->pidfd = -1;
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  int tmp[64];
  size_t ntmp = 0;
  if ((r->err = posix_spawn_file_actions_init(&fa)) != 0) {
    r->failed = "posix_spawn_file_actions_init";
    return;
  }
  if ((r->err = posix_spawnattr_init(&attr)) != 0) {
    posix_spawn_file_actions_destroy(&fa);
    r->failed = "posix_spawnattr_init";
    return;
  }
  int nf = (int)r->nfds;
  // A source fd inside 0..n-1 could be overwritten by an earlier dup2: move it above n first.
  int *src = calloc(r->nfds ? r->nfds : 1, sizeof *src);
  if (src == NULL) {
    r->err = ENOMEM;
    r->failed = "calloc";
    goto out;
  }
  for (int i = 0; i < nf; i++) {
    src[i] = r->fds[i];
    if (src[i] >= 0 && src[i] < nf && src[i] != i && ntmp < 64) {
      int d = fcntl(src[i], F_DUPFD_CLOEXEC, nf);
      if (d < 0) {
        r->err = errno;
        r->failed = "fcntl";
        goto out;
      }
      tmp[ntmp++] = d;
      src[i] = d;
    }
  }
  for (int i = 0; i < nf && r->err == 0; i++) {
    if (src[i] < 0) r->err = posix_spawn_file_actions_addopen(&fa, i, "/dev/null", O_RDWR, 0);
    else r->err = posix_spawn_file_actions_adddup2(&fa, src[i], i); // same fd: clears CLOEXEC
  }
  if (r->err == 0 && r->cwd != NULL) r->err = posix_spawn_file_actions_addchdir_np(&fa, r->cwd);
  if (r->err == 0) r->err = posix_spawn_file_actions_addclosefrom_np(&fa, nf < 3 ? 3 : nf);
  if (r->err != 0) {
    r->failed = "posix_spawn_file_actions";
    goto out;
  }
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
  if (r->setsid) flags |= POSIX_SPAWN_SETSID;
  else if (r->setpgid) flags |= POSIX_SPAWN_SETPGROUP;
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr, flags);
  r->err = posix_spawn(&r->pid, r->file, &fa, &attr, r->argv, r->envp);
  if (r->err != 0) {
    r->failed = "posix_spawn";
    goto out;
  }
  // The child is not reaped before its pidfd exists (only the reaper reaps), so the pid is ours.
  r->pidfd = pidfd_open_(r->pid);
  if (r->pidfd < 0) {
    r->err = errno;
    r->failed = "pidfd_open";
  } else {
    fcntl(r->pidfd, F_SETFD, FD_CLOEXEC);
  }
out:
  for (size_t i = 0; i < ntmp; i++) close(tmp[i]);
  free(src);
  posix_spawnattr_destroy(&attr);
  posix_spawn_file_actions_destroy(&fa);
}

static void spawn_complete(napi_env env, napi_status status, void *data) {
  struct spawn_req *r = data;
  napi_value cb, undef, argv[2];
  napi_get_undefined(env, &undef);
  argv[0] = undef;
  argv[1] = undef;
  int err = r->err;
  const char *failed = r->failed;
  if (err == 0 && r->pidfd >= 0) {
    err = watch_pidfd(env, r->pidfd, r->pid, 1);
    if (err != 0) failed = "epoll_ctl";
  }
  if (err != 0 && r->pid > 0) {
    // Spawned but not watched: end and reap it here so it cannot linger.
    kill(r->pid, SIGKILL);
    waitpid(r->pid, NULL, 0);
    if (r->pidfd >= 0) close(r->pidfd);
  }
  if (err != 0) {
    throw_errno(env, err, failed ? failed : "spawn", r->file);
    napi_get_and_clear_last_exception(env, &argv[0]);
  } else {
    napi_create_int32(env, r->pid, &argv[1]);
  }
  if (napi_get_reference_value(env, r->callback, &cb) == napi_ok && cb != NULL)
    napi_call_function(env, undef, cb, 2, argv, NULL);
  free_req(env, r);
}

static char **get_strv(napi_env env, napi_value arr, const char *what) {
  bool is_array = false;
  if (napi_is_array(env, arr, &is_array) != napi_ok) return NULL;
  if (!is_array) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", what);
    return NULL;
  }
  uint32_t n = 0;
  napi_get_array_length(env, arr, &n);
  char **v = calloc((size_t)n + 1, sizeof *v);
  if (v == NULL) return NULL;
  for (uint32_t i = 0; i < n; i++) {
    napi_value e;
    if (napi_get_element(env, arr, i, &e) != napi_ok || (v[i] = get_string(env, e, what)) == NULL) {
      free_strv(v);
      return NULL;
    }
  }
  return v;
}

// spawn(file, args, env, cwd|null, fds, flags, callback(err, pid)): flags bit 0 = setsid, bit 1 =
// own process group. fds[i] is the parent fd that becomes the child's fd i (-1: /dev/null). The
// parent keeps its fds; the caller closes the child's ends once the callback ran.
static napi_value spawn_async(napi_env env, napi_callback_info info) {
  napi_value argv[7];
  if (!get_args(env, info, 7, argv)) return NULL;
  if (reaper_tsfn == NULL) {
    napi_throw_error(env, "EINVAL", "setExitHandler was not called");
    return NULL;
  }
  struct spawn_req *r = calloc(1, sizeof *r);
  if (r == NULL) {
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  bool ok = true;
  uint32_t flags = 0;
  if ((r->file = get_string(env, argv[0], "file")) == NULL) goto fail;
  if ((r->argv = get_strv(env, argv[1], "args must be an array of strings")) == NULL) goto fail;
  if ((r->envp = get_strv(env, argv[2], "env must be an array of strings")) == NULL) goto fail;
  r->cwd = get_optional_string(env, argv[3], "cwd", &ok);
  if (!ok) goto fail;
  bool is_array = false;
  napi_is_array(env, argv[4], &is_array);
  if (!is_array) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "fds must be an array of numbers");
    goto fail;
  }
  uint32_t nfds = 0;
  napi_get_array_length(env, argv[4], &nfds);
  if (nfds > 64) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "at most 64 fds");
    goto fail;
  }
  r->nfds = nfds;
  r->fds = calloc(nfds ? nfds : 1, sizeof *r->fds);
  if (r->fds == NULL) goto fail;
  for (uint32_t i = 0; i < nfds; i++) {
    napi_value e;
    int64_t fd;
    if (napi_get_element(env, argv[4], i, &e) != napi_ok || !get_int64(env, e, "fd", &fd)) goto fail;
    r->fds[i] = fd < 0 ? -1 : (int)fd;
  }
  if (!get_uint32(env, argv[5], "flags", &flags)) goto fail;
  r->setsid = (flags & 1) != 0;
  r->setpgid = (flags & 2) != 0;
  if (napi_create_reference(env, argv[6], 1, &r->callback) != napi_ok) goto fail;
  napi_value name;
  napi_create_string_utf8(env, "berth-spawn", NAPI_AUTO_LENGTH, &name);
  if (napi_create_async_work(env, NULL, name, spawn_execute, spawn_complete, r, &r->work) != napi_ok)
    goto fail;
  if (napi_queue_async_work(env, r->work) != napi_ok) goto fail;
  return NULL;
fail:
  free_req(env, r);
  return NULL;
}

// [p[0], p[1]] as a JS array.
static napi_value fd_pair(napi_env env, const int p[2]) {
  napi_value arr, a, b;
  napi_create_array_with_length(env, 2, &arr);
  napi_create_int32(env, p[0], &a);
  napi_create_int32(env, p[1], &b);
  napi_set_element(env, arr, 0, a);
  napi_set_element(env, arr, 1, b);
  return arr;
}

// pipe() -> [readFd, writeFd], both close-on-exec.
static napi_value make_pipe(napi_env env, napi_callback_info info) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0) {
    throw_errno(env, errno, "pipe2", NULL);
    return NULL;
  }
  return fd_pair(env, p);
}

// dupFd(fd) -> a close-on-exec duplicate, so a caller may close its own fd before the spawn runs.
static napi_value dup_fd(napi_env env, napi_callback_info info) {
  napi_value argv[1], result;
  if (!get_args(env, info, 1, argv)) return NULL;
  int64_t fd;
  if (!get_int64(env, argv[0], "fd", &fd)) return NULL;
  int d = fcntl((int)fd, F_DUPFD_CLOEXEC, 3);
  if (d < 0) {
    throw_errno(env, errno, "fcntl", NULL);
    return NULL;
  }
  napi_create_int32(env, d, &result);
  return result;
}

// socketpair() -> [fd, fd]: a connected AF_UNIX stream pair, both close-on-exec. What Node's own
// child_process uses for 'pipe' stdio: unlike a pipe it can be half-closed (shutdown), so ending
// the child's stdin is an EOF it sees.
static napi_value make_socketpair(napi_env env, napi_callback_info info) {
  int p[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, p) < 0) {
    throw_errno(env, errno, "socketpair", NULL);
    return NULL;
  }
  return fd_pair(env, p);
}

// closeFd(fd): close(2), errors ignored (the fd is ours and done with).
static napi_value close_fd(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  int64_t fd;
  if (!get_int64(env, argv[0], "fd", &fd)) return NULL;
  if (fd >= 0) close((int)fd);
  return NULL;
}

// processExited(pid): true when our child pid has exited (its pidfd is readable or it was already
// reaped). Lets a timer that fired after a loop stall tell a finished command from a running one.
static napi_value process_alive(napi_env env, napi_callback_info info) {
  napi_value argv[1], result;
  if (!get_args(env, info, 1, argv)) return NULL;
  int64_t pid;
  if (!get_int64(env, argv[0], "pid", &pid)) return NULL;
  bool alive = false;
  int fd = pidfd_open_((pid_t)pid);
  if (fd >= 0) {
    siginfo_t si;
    memset(&si, 0, sizeof si);
    // WNOWAIT: peek only, the reaper still collects it.
    if (waitid((idtype_t)P_PIDFD, (id_t)fd, &si, WEXITED | WNOHANG | WNOWAIT) == 0) alive = si.si_pid == 0;
    else alive = errno != ECHILD; // ECHILD: no longer our child, it was reaped
    close(fd);
  }
  napi_get_boolean(env, alive, &result);
  return result;
}

bool init_spawn(napi_env env, napi_value exports) {
  return export_fn(env, exports, "setExitHandler", set_exit_handler) &&
         export_fn(env, exports, "spawn", spawn_async) && export_fn(env, exports, "watchPid", watch_pid) &&
         export_fn(env, exports, "pipe", make_pipe) &&
         export_fn(env, exports, "socketpair", make_socketpair) && export_fn(env, exports, "closeFd", close_fd) &&
         export_fn(env, exports, "dupFd", dup_fd) &&
         export_fn(env, exports, "processAlive", process_alive);
}
