// mount(2) and umount2(2). Using the syscall directly (not mount(8)) spares a process spawn per
// container and keeps the whole option string in one mount(2) data page, which is what overlayfs
// parses (util-linux 2.39+ would split options through fsconfig, limiting each to 256 bytes).
#include "util.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/mount.h>

// mount(source|null, target, fstype|null, flags, data|null)
static napi_value js_mount(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  if (!get_args(env, info, 5, argv)) return NULL;
  int64_t flags;
  if (!get_int64(env, argv[3], "flags", &flags)) return NULL;
  bool ok;
  char *source = NULL, *target = NULL, *fstype = NULL, *data = NULL;
  source = get_optional_string(env, argv[0], "source", &ok);
  if (!ok) goto out;
  target = get_string(env, argv[1], "target");
  if (target == NULL) goto out;
  fstype = get_optional_string(env, argv[2], "fstype", &ok);
  if (!ok) goto out;
  data = get_optional_string(env, argv[4], "data", &ok);
  if (!ok) goto out;
  if (mount(source, target, fstype, (unsigned long)flags, data) != 0) throw_errno(env, errno, "mount", target);
out:
  free(source);
  free(target);
  free(fstype);
  free(data);
  return NULL;
}

// umount2(target, flags)
static napi_value js_umount2(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  int64_t flags;
  if (!get_int64(env, argv[1], "flags", &flags)) return NULL;
  char *target = get_string(env, argv[0], "target");
  if (target == NULL) return NULL;
  if (umount2(target, (int)flags) != 0) throw_errno(env, errno, "umount2", target);
  free(target);
  return NULL;
}

bool init_mount(napi_env env, napi_value exports) {
  napi_value c;
  if (napi_create_object(env, &c) != napi_ok) return false;
  bool ok = export_int(env, c, "MS_RDONLY", MS_RDONLY) && export_int(env, c, "MS_NOSUID", MS_NOSUID) &&
            export_int(env, c, "MS_NODEV", MS_NODEV) && export_int(env, c, "MS_NOEXEC", MS_NOEXEC) &&
            export_int(env, c, "MS_REMOUNT", MS_REMOUNT) && export_int(env, c, "MS_BIND", MS_BIND) &&
            export_int(env, c, "MS_MOVE", MS_MOVE) && export_int(env, c, "MS_REC", MS_REC) &&
            export_int(env, c, "MS_PRIVATE", MS_PRIVATE) && export_int(env, c, "MS_SLAVE", MS_SLAVE) &&
            export_int(env, c, "MS_SHARED", MS_SHARED) && export_int(env, c, "MS_UNBINDABLE", MS_UNBINDABLE) &&
            export_int(env, c, "MNT_FORCE", MNT_FORCE) && export_int(env, c, "MNT_DETACH", MNT_DETACH) &&
            export_int(env, c, "MNT_EXPIRE", MNT_EXPIRE) && export_int(env, c, "UMOUNT_NOFOLLOW", UMOUNT_NOFOLLOW);
  return ok && napi_set_named_property(env, exports, "mountConstants", c) == napi_ok && export_fn(env, exports, "mount", js_mount) &&
         export_fn(env, exports, "umount2", js_umount2);
}
