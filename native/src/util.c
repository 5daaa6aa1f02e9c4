#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool get_args(napi_env env, napi_callback_info info, size_t n, napi_value *argv) {
  size_t argc = n;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return false;
  if (argc < n) {
    char msg[96];
    snprintf(msg, sizeof msg, "expected %zu arguments, got %zu", n, argc);
    napi_throw_type_error(env, "ERR_INVALID_ARG_COUNT", msg);
    return false;
  }
  return true;
}

static void throw_arg_type(napi_env env, const char *what, const char *expected) {
  char msg[160];
  snprintf(msg, sizeof msg, "argument '%s' must be %s", what, expected);
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
}

char *get_string(napi_env env, napi_value v, const char *what) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok) return NULL;
  if (t != napi_string) {
    throw_arg_type(env, what, "a string");
    return NULL;
  }
  size_t len = 0;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) return NULL;
  char *buf = malloc(len + 1);
  if (buf == NULL) {
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  size_t copied = 0;
  if (napi_get_value_string_utf8(env, v, buf, len + 1, &copied) != napi_ok) {
    free(buf);
    return NULL;
  }
  // An embedded NUL would silently truncate the path the kernel sees.
  if (strlen(buf) != copied) {
    free(buf);
    throw_arg_type(env, what, "a string without NUL bytes");
    return NULL;
  }
  return buf;
}

char *get_optional_string(napi_env env, napi_value v, const char *what, bool *ok) {
  napi_valuetype t;
  *ok = false;
  if (napi_typeof(env, v, &t) != napi_ok) return NULL;
  if (t == napi_null || t == napi_undefined) {
    *ok = true;
    return NULL;
  }
  char *s = get_string(env, v, what);
  *ok = s != NULL;
  return s;
}

bool get_int64(napi_env env, napi_value v, const char *what, int64_t *out) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok) return false;
  if (t != napi_number) {
    throw_arg_type(env, what, "a number");
    return false;
  }
  return napi_get_value_int64(env, v, out) == napi_ok;
}

bool get_uint32(napi_env env, napi_value v, const char *what, uint32_t *out) {
  int64_t x;
  if (!get_int64(env, v, what, &x)) return false;
  if (x < 0 || x > UINT32_MAX) {
    char msg[160];
    snprintf(msg, sizeof msg, "argument '%s' is out of range", what);
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", msg);
    return false;
  }
  *out = (uint32_t)x;
  return true;
}

const char *errno_name(int err) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
  const char *name = strerrorname_np(err);
  if (name != NULL) return name;
#else
  switch (err) {
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case EIO: return "EIO";
    case EBADF: return "EBADF";
    case ENOMEM: return "ENOMEM";
    case EACCES: return "EACCES";
    case EFAULT: return "EFAULT";
    case EBUSY: return "EBUSY";
    case EEXIST: return "EEXIST";
    case EXDEV: return "EXDEV";
    case ENODEV: return "ENODEV";
    case ENOTDIR: return "ENOTDIR";
    case EISDIR: return "EISDIR";
    case EINVAL: return "EINVAL";
    case ENOSPC: return "ENOSPC";
    case EROFS: return "EROFS";
    case ERANGE: return "ERANGE";
    case ENAMETOOLONG: return "ENAMETOOLONG";
    case ELOOP: return "ELOOP";
    case ENODATA: return "ENODATA";
    case ENOTSUP: return "ENOTSUP";
    case E2BIG: return "E2BIG";
    case EDQUOT: return "EDQUOT";
  }
#endif
  return "UNKNOWN";
}

static bool set_prop_str(napi_env env, napi_value obj, const char *key, const char *val) {
  napi_value v;
  return napi_create_string_utf8(env, val, NAPI_AUTO_LENGTH, &v) == napi_ok &&
         napi_set_named_property(env, obj, key, v) == napi_ok;
}

void throw_errno(napi_env env, int err, const char *syscall, const char *path) {
  const char *code = errno_name(err);
  char msg[512];
  if (path != NULL)
    snprintf(msg, sizeof msg, "%s: %s, %s '%s'", code, strerror(err), syscall, path);
  else
    snprintf(msg, sizeof msg, "%s: %s, %s", code, strerror(err), syscall);
  napi_value js_code, js_msg, error, js_errno;
  if (napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &js_code) != napi_ok) return;
  if (napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &js_msg) != napi_ok) return;
  if (napi_create_error(env, js_code, js_msg, &error) != napi_ok) return;
  if (napi_create_int32(env, -err, &js_errno) == napi_ok) napi_set_named_property(env, error, "errno", js_errno);
  set_prop_str(env, error, "syscall", syscall);
  if (path != NULL) set_prop_str(env, error, "path", path);
  napi_throw(env, error);
}

void call_back_errno(napi_env env, napi_ref callback, int err, const char *syscall, const char *path) {
  napi_value cb, undef, argv[1];
  napi_get_undefined(env, &undef);
  argv[0] = undef;
  if (err != 0) {
    throw_errno(env, err, syscall, path);
    napi_get_and_clear_last_exception(env, &argv[0]);
  }
  if (napi_get_reference_value(env, callback, &cb) == napi_ok && cb != NULL)
    napi_call_function(env, undef, cb, 1, argv, NULL);
}

bool queue_with_callback(napi_env env, napi_value callback, const char *name, napi_async_execute_callback execute,
                         napi_async_complete_callback complete, void *data, napi_ref *callback_ref,
                         napi_async_work *work) {
  napi_valuetype t;
  if (napi_typeof(env, callback, &t) != napi_ok || t != napi_function) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "callback must be a function");
    return false;
  }
  if (napi_create_reference(env, callback, 1, callback_ref) != napi_ok) return false;
  napi_value js_name;
  if (napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &js_name) != napi_ok) return false;
  if (napi_create_async_work(env, NULL, js_name, execute, complete, data, work) != napi_ok) return false;
  return napi_queue_async_work(env, *work) == napi_ok;
}

bool export_fn(napi_env env, napi_value exports, const char *name, napi_callback fn) {
  napi_value f;
  return napi_create_function(env, name, NAPI_AUTO_LENGTH, fn, NULL, &f) == napi_ok &&
         napi_set_named_property(env, exports, name, f) == napi_ok;
}

bool export_int(napi_env env, napi_value obj, const char *name, int64_t value) {
  napi_value v;
  return napi_create_int64(env, value, &v) == napi_ok && napi_set_named_property(env, obj, name, v) == napi_ok;
}
