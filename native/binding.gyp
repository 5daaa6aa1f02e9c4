# Berth's native addon: the few Linux syscalls Node does not expose (mknod, xattrs, mount, syncfs).
# Plain N-API in C; one source file per area so later additions (e.g. SOCK_SEQPACKET helpers) slot in.
{
  "targets": [
    {
      "target_name": "berth_native",
      "sources": ["src/addon.c", "src/util.c", "src/fsops.c", "src/mount.c", "src/socket.c", "src/spawn.c", "src/memory.c", "src/netns.c", "src/atomic-write.c"],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"],
      "cflags": ["-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter", "-O2"]
    }
  ]
}
