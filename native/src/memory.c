// Memory housekeeping Node does not expose: glibc's malloc_trim, which hands the free memory of
// every malloc arena (not just the top of the main heap) back to the kernel.
#include <malloc.h>
#include "util.h"

// mallocTrim(): true when some memory was released.
static napi_value js_malloc_trim(napi_env env, napi_callback_info info) {
  napi_value out;
  NAPI_OK(napi_get_boolean(env, malloc_trim(0) != 0, &out));
  return out;
}

bool init_memory(napi_env env, napi_value exports) {
  return export_fn(env, exports, "mallocTrim", js_malloc_trim);
}
