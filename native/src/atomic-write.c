// atomicWriteFile(target, tmp, data, mode, durable, callback): Berth's crash-safe record write as one
// job on libuv's thread pool: open `tmp` (O_EXCL), write `data`, fsync, close, rename over `target`,
// then fsync the directory. With `durable` false the two fsyncs are left out (a kill -9 still leaves
// the old file or the new one; a power loss may not: replaceFile in internal/util/fs.ts). The same
// steps through fs.promises are eight trips between the event loop and the pool, each waiting for a
// thread and then for the loop; here the loop only queues the job and hears its end. A failure
// before the rename removes `tmp`; callback(err) carries a Node-style error naming the step
// (syscall) and the path it failed on.
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

struct write_req {
  napi_async_work work;
  napi_ref callback;
  napi_ref data_ref;  // keeps the Buffer alive while the pool thread reads it
  const char *data;
  size_t len;
  char *target;
  char *tmp;
  uint32_t mode;
  bool durable;
  int err;
  const char *failed;
  const char *failed_path;  // target or tmp (both outlive the error's creation)
};

static int fail(struct write_req *r, const char *syscall, const char *path) {
  r->err = errno;
  r->failed = syscall;
  r->failed_path = path;
  return -1;
}

// Writes and syncs `tmp`; on failure *created tells whether the file is there to be removed.
static int write_tmp(struct write_req *r, bool *created) {
  int fd = open(r->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, (mode_t)r->mode);
  if (fd < 0) return fail(r, "open", r->tmp);
  *created = true;
  size_t off = 0;
  while (off < r->len) {
    ssize_t n = write(fd, r->data + off, r->len - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail(r, "write", r->tmp);
      close(fd);
      return -1;
    }
    off += (size_t)n;
  }
  if (r->durable && fsync(fd) != 0) {
    fail(r, "fsync", r->tmp);
    close(fd);
    return -1;
  }
  if (close(fd) != 0) return fail(r, "close", r->tmp);
  return 0;
}

static void sync_dir(struct write_req *r) {
  // dirname() may modify its argument: work on a copy
  char *copy = strdup(r->target);
  if (copy == NULL) {
    errno = ENOMEM;
    fail(r, "open", r->target);
    return;
  }
  int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  int open_errno = errno;
  free(copy);
  if (fd < 0) {
    errno = open_errno;
    fail(r, "open", r->target);
    return;
  }
  if (fsync(fd) != 0) fail(r, "fsync", r->target);
  close(fd);
}

static void write_execute(napi_env env, void *data) {
  struct write_req *r = data;
  bool created = false;
  if (write_tmp(r, &created) != 0) {
    if (created) unlink(r->tmp);
    return;
  }
  if (rename(r->tmp, r->target) != 0) {
    fail(r, "rename", r->tmp);
    unlink(r->tmp);
    return;
  }
  if (r->durable) sync_dir(r);
}

static void free_req(napi_env env, struct write_req *r) {
  if (r->work) napi_delete_async_work(env, r->work);
  if (r->callback) napi_delete_reference(env, r->callback);
  if (r->data_ref) napi_delete_reference(env, r->data_ref);
  free(r->target);
  free(r->tmp);
  free(r);
}

static void write_complete(napi_env env, napi_status status, void *data) {
  struct write_req *r = data;
  call_back_errno(env, r->callback, r->err, r->failed, r->failed_path);
  free_req(env, r);
}

static napi_value atomic_write_file(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  if (!get_args(env, info, 6, argv)) return NULL;
  struct write_req *r = calloc(1, sizeof *r);
  if (r == NULL) {
    throw_errno(env, ENOMEM, "atomicWriteFile", NULL);
    return NULL;
  }
  if ((r->target = get_string(env, argv[0], "target")) == NULL) goto fail;
  if ((r->tmp = get_string(env, argv[1], "tmp")) == NULL) goto fail;
  bool is_buf = false;
  if (napi_is_buffer(env, argv[2], &is_buf) != napi_ok || !is_buf) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "argument 'data' must be a Buffer");
    goto fail;
  }
  void *bytes = NULL;
  if (napi_get_buffer_info(env, argv[2], &bytes, &r->len) != napi_ok) goto fail;
  r->data = bytes;
  if (!get_uint32(env, argv[3], "mode", &r->mode)) goto fail;
  if (napi_get_value_bool(env, argv[4], &r->durable) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "argument 'durable' must be a boolean");
    goto fail;
  }
  if (napi_create_reference(env, argv[2], 1, &r->data_ref) != napi_ok) goto fail;
  if (!queue_with_callback(env, argv[5], "berth-atomic-write", write_execute, write_complete, r, &r->callback,
                           &r->work))
    goto fail;
  return NULL;
fail:
  free_req(env, r);
  return NULL;
}

bool init_atomic_write(napi_env env, napi_value exports) {
  return export_fn(env, exports, "atomicWriteFile", atomic_write_file);
}
