// Entry point of berth_native.node. Functions throw (or, the asynchronous ones, pass to their
// callback) Node-style errno errors (err.code = 'EPERM', err.errno = -1, err.syscall, err.path).
// Areas live in their own files (fsops.c, mount.c, ...) and register themselves here.
#include "util.h"

static napi_value init(napi_env env, napi_value exports) {
  if (!init_fsops(env, exports)) return NULL;
  if (!init_mount(env, exports)) return NULL;
  if (!init_socket(env, exports)) return NULL;
  if (!init_spawn(env, exports)) return NULL;
  if (!init_memory(env, exports)) return NULL;
  if (!init_netns(env, exports)) return NULL;
  if (!init_atomic_write(env, exports)) return NULL;
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
