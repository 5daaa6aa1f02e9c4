// Shared helpers for the addon: argument unpacking and errno -> JS Error conversion.
#ifndef BERTH_NATIVE_UTIL_H
#define BERTH_NATIVE_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <node_api.h>

// Bails out of a napi callback (returning NULL) when a napi call fails; a JS exception is pending then.
#define NAPI_OK(call)                    \
  do {                                   \
    if ((call) != napi_ok) return NULL;  \
  } while (0)

// Fetches exactly `n` arguments into argv (throws TypeError when fewer were passed).
bool get_args(napi_env env, napi_callback_info info, size_t n, napi_value *argv);

// Copies a JS string argument into a malloc'd NUL-terminated buffer (caller frees). Throws a
// TypeError naming `what` and returns NULL when the value is not a string or contains NUL.
char *get_string(napi_env env, napi_value v, const char *what);

// Like get_string but maps null/undefined to a NULL result with *ok = true.
char *get_optional_string(napi_env env, napi_value v, const char *what, bool *ok);

bool get_int64(napi_env env, napi_value v, const char *what, int64_t *out);
bool get_uint32(napi_env env, napi_value v, const char *what, uint32_t *out);

// Throws an Error shaped like Node's fs errors: message "<CODE>: <strerror>, <syscall> '<path>'",
// and properties code, errno (negative, as libuv reports it), syscall and path.
void throw_errno(napi_env env, int err, const char *syscall, const char *path);

// Calls the JS function held by `callback` with a Node-style errno error (as throw_errno makes it)
// when err != 0, else with undefined: the completion of the asynchronous calls (pinNetns,
// atomicWriteFile).
void call_back_errno(napi_env env, napi_ref callback, int err, const char *syscall, const char *path);

// The start of an asynchronous call: checks that `callback` is a function (TypeError if not), keeps
// a reference to it in *callback_ref, then creates the work named `name` into *work and queues it
// on libuv's thread pool. False with a JS exception pending when a step fails; the caller frees
// what it allocated (and the reference and work, when set).
bool queue_with_callback(napi_env env, napi_value callback, const char *name, napi_async_execute_callback execute,
                         napi_async_complete_callback complete, void *data, napi_ref *callback_ref,
                         napi_async_work *work);

// The symbolic name of an errno value ("ENOENT"), or "UNKNOWN".
const char *errno_name(int err);

// Registers fn as exports[name].
bool export_fn(napi_env env, napi_value exports, const char *name, napi_callback fn);
bool export_int(napi_env env, napi_value obj, const char *name, int64_t value);

// Per-area initialisers, each adds its functions to exports.
bool init_fsops(napi_env env, napi_value exports);
bool init_mount(napi_env env, napi_value exports);
bool init_socket(napi_env env, napi_value exports);
bool init_memory(napi_env env, napi_value exports);
bool init_spawn(napi_env env, napi_value exports);
bool init_netns(napi_env env, napi_value exports);
bool init_atomic_write(napi_env env, napi_value exports);

#endif
