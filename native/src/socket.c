// What the streaming server needs below Node: SOCK_SEQPACKET unix sockets (conmon's attach
// socket, which libuv cannot wrap), readiness watching of such fds on Node's own event loop
// (uv_poll), and pseudo-terminals (openpty in raw mode, TIOCSWINSZ) for exec with a tty.
//
// Every fd returned is O_CLOEXEC; sockets are O_NONBLOCK. recv/send never block: they return
// null / -1 on EAGAIN and the caller waits with pollStart.
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>
#include <uv.h>

// seqpacketConnect(path) -> fd
static napi_value js_seqpacket_connect(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  char *p = get_string(env, argv[0], "path");
  if (p == NULL) return NULL;
  struct sockaddr_un addr;
  memset(&addr, 0, sizeof(addr));
  addr.sun_family = AF_UNIX;
  if (strlen(p) >= sizeof(addr.sun_path)) {
    throw_errno(env, ENAMETOOLONG, "connect", p);
    free(p);
    return NULL;
  }
  strcpy(addr.sun_path, p);
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    throw_errno(env, errno, "socket", p);
    free(p);
    return NULL;
  }
  // Blocking connect: a unix socket connect completes at once or fails (ECONNREFUSED, ENOENT).
  int rc;
  do {
    rc = connect(fd, (struct sockaddr *)&addr, sizeof(addr));
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    int e = errno;
    close(fd);
    throw_errno(env, e, "connect", p);
    free(p);
    return NULL;
  }
  free(p);
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0) {
    int e = errno;
    close(fd);
    throw_errno(env, e, "fcntl", NULL);
    return NULL;
  }
  napi_value out;
  NAPI_OK(napi_create_int32(env, fd, &out));
  return out;
}

// recv(fd, maxLen) -> Buffer (one packet; empty at EOF) | null (would block)
static napi_value js_recv(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  uint32_t fd, max;
  if (!get_uint32(env, argv[0], "fd", &fd) || !get_uint32(env, argv[1], "maxLen", &max)) return NULL;
  if (max == 0 || max > 1024 * 1024) max = 65536;
  char *buf = malloc(max);
  if (buf == NULL) {
    throw_errno(env, ENOMEM, "recv", NULL);
    return NULL;
  }
  ssize_t n;
  do {
    n = recv((int)fd, buf, max, MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  napi_value out = NULL;
  if (n < 0) {
    int e = errno;
    free(buf);
    if (e == EAGAIN || e == EWOULDBLOCK) {
      napi_get_null(env, &out);
      return out;
    }
    // A reset connection ends like EOF for our callers.
    if (e == ECONNRESET) {
      napi_create_buffer(env, 0, NULL, &out);
      return out;
    }
    throw_errno(env, e, "recv", NULL);
    return NULL;
  }
  void *data;
  if (napi_create_buffer_copy(env, (size_t)n, buf, &data, &out) != napi_ok) out = NULL;
  free(buf);
  return out;
}

// send(fd, buffer) -> bytes sent | -1 (would block)
static napi_value js_send(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  uint32_t fd;
  if (!get_uint32(env, argv[0], "fd", &fd)) return NULL;
  void *data;
  size_t len;
  if (napi_get_buffer_info(env, argv[1], &data, &len) != napi_ok) {
    napi_throw_type_error(env, NULL, "data must be a Buffer");
    return NULL;
  }
  ssize_t n;
  do {
    n = send((int)fd, data, len, MSG_DONTWAIT | MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
    throw_errno(env, errno, "send", NULL);
    return NULL;
  }
  napi_value out;
  NAPI_OK(napi_create_int64(env, n < 0 ? -1 : (int64_t)n, &out));
  return out;
}

// shutdown(fd, how) with how 0 (RD), 1 (WR), 2 (RDWR); ENOTCONN ignored.
static napi_value js_shutdown(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  uint32_t fd, how;
  if (!get_uint32(env, argv[0], "fd", &fd) || !get_uint32(env, argv[1], "how", &how)) return NULL;
  if (shutdown((int)fd, (int)how) != 0 && errno != ENOTCONN) throw_errno(env, errno, "shutdown", NULL);
  return NULL;
}

// ---- fd watching on Node's loop ----

typedef struct {
  uv_poll_t handle;
  napi_env env;
  napi_ref cb;
  napi_async_context ctx;
  int closing;    // pollStop (or finalize) ran: no more callbacks
  int uv_closed;  // libuv is done with the handle
  int finalized;  // the JS external is gone
} watcher_t;

// The struct lives until both libuv and the JS external have let go of it.
static void watcher_closed(uv_handle_t *h) {
  watcher_t *w = (watcher_t *)h->data;
  w->uv_closed = 1;
  if (w->finalized) free(w);
}

static void watcher_release(watcher_t *w) {
  if (w->closing) return;
  w->closing = 1;
  uv_poll_stop(&w->handle);
  napi_delete_reference(w->env, w->cb);
  napi_async_destroy(w->env, w->ctx);
  uv_close((uv_handle_t *)&w->handle, watcher_closed);
}

static void watcher_cb(uv_poll_t *h, int status, int events) {
  watcher_t *w = (watcher_t *)h->data;
  if (w->closing) return;
  napi_env env = w->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value cb, recv, args[2], result;
  if (napi_get_reference_value(env, w->cb, &cb) == napi_ok && cb != NULL &&
      napi_get_global(env, &recv) == napi_ok && napi_create_int32(env, status, &args[0]) == napi_ok &&
      napi_create_int32(env, events, &args[1]) == napi_ok) {
    // make_callback: microtasks and async hooks run as after any other I/O callback.
    napi_make_callback(env, w->ctx, recv, cb, 2, args, &result);
  }
  napi_close_handle_scope(env, scope);
}

static void watcher_finalize(napi_env env, void *data, void *hint) {
  watcher_t *w = (watcher_t *)data;
  w->finalized = 1;
  // Collected without pollStop: stop watching (the fd itself is the caller's).
  watcher_release(w);
  if (w->uv_closed) free(w);
}

// pollStart(fd, events, cb(status, events)) -> handle. events: 1 readable, 2 writable (UV_READABLE/UV_WRITABLE).
static napi_value js_poll_start(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!get_args(env, info, 3, argv)) return NULL;
  uint32_t fd, events;
  if (!get_uint32(env, argv[0], "fd", &fd) || !get_uint32(env, argv[1], "events", &events)) return NULL;
  uv_loop_t *loop;
  NAPI_OK(napi_get_uv_event_loop(env, &loop));
  watcher_t *w = calloc(1, sizeof(*w));
  if (w == NULL) {
    throw_errno(env, ENOMEM, "pollStart", NULL);
    return NULL;
  }
  w->env = env;
  int rc = uv_poll_init(loop, &w->handle, (int)fd);
  if (rc != 0) {
    free(w);
    throw_errno(env, -rc, "uv_poll_init", NULL);
    return NULL;
  }
  w->handle.data = w;
  w->finalized = 1;  // until the external exists, only libuv holds w
  napi_value name, resource, ext;
  if (napi_create_reference(env, argv[2], 1, &w->cb) != napi_ok ||
      napi_create_string_utf8(env, "berth.fdwatch", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_create_object(env, &resource) != napi_ok || napi_async_init(env, resource, name, &w->ctx) != napi_ok) {
    w->closing = 1;
    uv_close((uv_handle_t *)&w->handle, watcher_closed);
    return NULL;
  }
  rc = uv_poll_start(&w->handle, (int)events, watcher_cb);
  if (rc != 0) {
    watcher_release(w);
    throw_errno(env, -rc, "uv_poll_start", NULL);
    return NULL;
  }
  w->finalized = 0;
  if (napi_create_external(env, w, watcher_finalize, NULL, &ext) != napi_ok) {
    w->finalized = 1;
    watcher_release(w);
    return NULL;
  }
  return ext;
}

static watcher_t *get_watcher(napi_env env, napi_value v) {
  void *data = NULL;
  if (napi_get_value_external(env, v, &data) != napi_ok || data == NULL) {
    napi_throw_type_error(env, NULL, "not a poll handle");
    return NULL;
  }
  return (watcher_t *)data;
}

// pollUpdate(handle, events): change the watched events (0 pauses).
static napi_value js_poll_update(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  watcher_t *w = get_watcher(env, argv[0]);
  uint32_t events;
  if (w == NULL || !get_uint32(env, argv[1], "events", &events)) return NULL;
  if (w->closing) return NULL;
  int rc = events == 0 ? uv_poll_stop(&w->handle) : uv_poll_start(&w->handle, (int)events, watcher_cb);
  if (rc != 0) throw_errno(env, -rc, "uv_poll_start", NULL);
  return NULL;
}

// pollStop(handle): stops watching for good; call before closing the fd.
static napi_value js_poll_stop(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  watcher_t *w = get_watcher(env, argv[0]);
  if (w == NULL) return NULL;
  watcher_release(w);
  return NULL;
}

// ---- pseudo-terminals ----

// openpty(rows, cols) -> [master, slave]: both O_CLOEXEC, the terminal in raw mode.
static napi_value js_openpty(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  uint32_t rows, cols;
  if (!get_uint32(env, argv[0], "rows", &rows) || !get_uint32(env, argv[1], "cols", &cols)) return NULL;
  int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0) {
    throw_errno(env, errno, "posix_openpt", NULL);
    return NULL;
  }
  char name[128];
  if (grantpt(master) != 0 || unlockpt(master) != 0 || ptsname_r(master, name, sizeof(name)) != 0) {
    int e = errno;
    close(master);
    throw_errno(env, e, "unlockpt", NULL);
    return NULL;
  }
  int slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (slave < 0) {
    int e = errno;
    close(master);
    throw_errno(env, e, "open", name);
    return NULL;
  }
  struct termios t;
  struct winsize ws = {.ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols};
  if (tcgetattr(slave, &t) != 0 || (cfmakeraw(&t), tcsetattr(slave, TCSANOW, &t)) != 0 ||
      ioctl(master, TIOCSWINSZ, &ws) != 0) {
    int e = errno;
    close(master);
    close(slave);
    throw_errno(env, e, "tcsetattr", name);
    return NULL;
  }
  napi_value out, m, s;
  NAPI_OK(napi_create_array_with_length(env, 2, &out));
  NAPI_OK(napi_create_int32(env, master, &m));
  NAPI_OK(napi_create_int32(env, slave, &s));
  NAPI_OK(napi_set_element(env, out, 0, m));
  NAPI_OK(napi_set_element(env, out, 1, s));
  return out;
}

// setWinsize(fd, rows, cols)
static napi_value js_set_winsize(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!get_args(env, info, 3, argv)) return NULL;
  uint32_t fd, rows, cols;
  if (!get_uint32(env, argv[0], "fd", &fd) || !get_uint32(env, argv[1], "rows", &rows) ||
      !get_uint32(env, argv[2], "cols", &cols))
    return NULL;
  struct winsize ws = {.ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols};
  if (ioctl((int)fd, TIOCSWINSZ, &ws) != 0) throw_errno(env, errno, "ioctl", NULL);
  return NULL;
}

bool init_socket(napi_env env, napi_value exports) {
  return export_fn(env, exports, "seqpacketConnect", js_seqpacket_connect) && export_fn(env, exports, "recv", js_recv) &&
         export_fn(env, exports, "send", js_send) && export_fn(env, exports, "shutdown", js_shutdown) &&
         export_fn(env, exports, "pollStart", js_poll_start) && export_fn(env, exports, "pollUpdate", js_poll_update) &&
         export_fn(env, exports, "pollStop", js_poll_stop) && export_fn(env, exports, "openpty", js_openpty) &&
         export_fn(env, exports, "setWinsize", js_set_winsize);
}
