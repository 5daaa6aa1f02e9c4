// File system calls Node lacks: mknod (devices, fifos, overlay whiteouts), the l*xattr family
// (never following symlinks) and syncfs.
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

// mknod(path, mode, major, minor): mode carries the file type (S_IFCHR, S_IFBLK, S_IFIFO, S_IFREG)
// and permission bits; the process umask applies, as with mknod(2).
static napi_value js_mknod(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (!get_args(env, info, 4, argv)) return NULL;
  uint32_t mode, major_n, minor_n;
  if (!get_uint32(env, argv[1], "mode", &mode)) return NULL;
  if (!get_uint32(env, argv[2], "major", &major_n)) return NULL;
  if (!get_uint32(env, argv[3], "minor", &minor_n)) return NULL;
  char *path = get_string(env, argv[0], "path");
  if (path == NULL) return NULL;
  if (mknod(path, (mode_t)mode, makedev(major_n, minor_n)) != 0) throw_errno(env, errno, "mknod", path);
  free(path);
  return NULL;
}

// lsetxattr(path, name, value: Buffer)
static napi_value js_lsetxattr(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!get_args(env, info, 3, argv)) return NULL;
  bool is_buf = false;
  NAPI_OK(napi_is_buffer(env, argv[2], &is_buf));
  if (!is_buf) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "argument 'value' must be a Buffer");
    return NULL;
  }
  void *data = NULL;
  size_t len = 0;
  NAPI_OK(napi_get_buffer_info(env, argv[2], &data, &len));
  char *path = get_string(env, argv[0], "path");
  if (path == NULL) return NULL;
  char *name = get_string(env, argv[1], "name");
  if (name == NULL) {
    free(path);
    return NULL;
  }
  if (lsetxattr(path, name, data, len, 0) != 0) throw_errno(env, errno, "lsetxattr", path);
  free(name);
  free(path);
  return NULL;
}

// lgetxattr(path, name): Buffer, or undefined when the attribute is not set (ENODATA).
static napi_value js_lgetxattr(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  char *path = get_string(env, argv[0], "path");
  if (path == NULL) return NULL;
  char *name = get_string(env, argv[1], "name");
  if (name == NULL) {
    free(path);
    return NULL;
  }
  napi_value result = NULL;
  char *buf = NULL;
  // The value may grow between the size query and the read; retry on ERANGE.
  for (;;) {
    ssize_t size = lgetxattr(path, name, NULL, 0);
    if (size < 0) {
      if (errno != ENODATA) throw_errno(env, errno, "lgetxattr", path);
      else napi_get_undefined(env, &result);
      break;
    }
    free(buf);
    buf = malloc(size > 0 ? (size_t)size : 1);
    if (buf == NULL) {
      throw_errno(env, ENOMEM, "lgetxattr", path);
      break;
    }
    ssize_t got = lgetxattr(path, name, buf, (size_t)size);
    if (got < 0) {
      if (errno == ERANGE) continue;
      if (errno != ENODATA) throw_errno(env, errno, "lgetxattr", path);
      else napi_get_undefined(env, &result);
      break;
    }
    napi_create_buffer_copy(env, (size_t)got, buf, NULL, &result);
    break;
  }
  free(buf);
  free(name);
  free(path);
  return result;
}

// llistxattr(path): string[] of attribute names.
static napi_value js_llistxattr(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  char *path = get_string(env, argv[0], "path");
  if (path == NULL) return NULL;
  napi_value result = NULL;
  char *buf = NULL;
  ssize_t got = -1;
  for (;;) {
    ssize_t size = llistxattr(path, NULL, 0);
    if (size < 0) break;
    free(buf);
    buf = malloc(size > 0 ? (size_t)size : 1);
    if (buf == NULL) {
      errno = ENOMEM;
      break;
    }
    got = llistxattr(path, buf, (size_t)size);
    if (got >= 0 || errno != ERANGE) break;
  }
  if (got < 0) {
    throw_errno(env, errno, "llistxattr", path);
  } else if (napi_create_array(env, &result) == napi_ok) {
    uint32_t i = 0;
    for (ssize_t off = 0; off < got;) {
      size_t n = strnlen(buf + off, (size_t)(got - off));
      napi_value s;
      if (napi_create_string_utf8(env, buf + off, n, &s) != napi_ok) break;
      if (napi_set_element(env, result, i++, s) != napi_ok) break;
      off += (ssize_t)n + 1;
    }
  }
  free(buf);
  free(path);
  return result;
}

// lremovexattr(path, name)
static napi_value js_lremovexattr(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  char *path = get_string(env, argv[0], "path");
  if (path == NULL) return NULL;
  char *name = get_string(env, argv[1], "name");
  if (name == NULL) {
    free(path);
    return NULL;
  }
  if (lremovexattr(path, name) != 0) throw_errno(env, errno, "lremovexattr", path);
  free(name);
  free(path);
  return NULL;
}

// syncfs(path): flushes the whole file system holding path (one call instead of an fsync per file).
static napi_value js_syncfs(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  char *path = get_string(env, argv[0], "path");
  if (path == NULL) return NULL;
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    throw_errno(env, errno, "open", path);
  } else {
    if (syncfs(fd) != 0) throw_errno(env, errno, "syncfs", path);
    close(fd);
  }
  free(path);
  return NULL;
}

bool init_fsops(napi_env env, napi_value exports) {
  return export_fn(env, exports, "mknod", js_mknod) && export_fn(env, exports, "lsetxattr", js_lsetxattr) &&
         export_fn(env, exports, "lgetxattr", js_lgetxattr) && export_fn(env, exports, "llistxattr", js_llistxattr) &&
         export_fn(env, exports, "lremovexattr", js_lremovexattr) && export_fn(env, exports, "syncfs", js_syncfs);
}
