// berth-exec: runs one command inside a running container the way `runc exec` does, for a fraction
// of runc's cost (no Go runtime start, no state.json load, no re-parse of config.json per call).
//
// The caller (internal/runtime/exec-helper.ts) hands over everything runc would take from the
// container's process spec, already resolved: the namespaces to join, the cgroup.procs files of the
// container's cgroups, rlimits, oom_score_adj, user/groups/umask, the five capability sets,
// no_new_privs, a seccomp filter compiled once per container (see `compile-seccomp` below), env,
// cwd. Anything it cannot reproduce (AppArmor, SELinux, seccomp notify, ...) the caller keeps on
// runc; this program does not guess.
//
// Command line contract, the same as `runc exec` for the caller: `--log PATH` receives runc-style
// JSON lines ({"level":"error","msg":...}) for a failure to start the command, `--pid-file PATH`
// gets the command's host pid (written to a temp name and renamed, as runc does) once it exists
// (or, with `--pid-log`, the pid comes as a {"level":"info","msg":"started","pid":N} line on the
// log: no file to write, watch, read and remove per exec), and the exit status is the command's
// (128+N when killed by signal N). The command leads its own session, so the caller can kill its
// whole process group. Every fd from 3 up is closed when the command execs, as with runc exec.
//
// Process tree: this process (outside the container; child subreaper) → a setup child that joins
// the cgroups and namespaces and forks → the command, which is re-parented here when the setup
// child exits. Only the command is ever charged to the container's cgroups and pid namespace.
//
// Steps of the command, in runc's order (libcontainer setns init + finalizeNamespace): rlimits and
// oom_score_adj (inherited from the setup child), setsid, session keyring, no_new_privs, seccomp
// when no_new_privs is off (loading it needs CAP_SYS_ADMIN then), bounding set, keep-caps,
// setgroups/setresgid/setresuid, chdir, capabilities (effective, permitted, inheritable, ambient),
// seccomp when no_new_privs is on, HOME from the container's /etc/passwd when env has none, PATH
// lookup with the container's PATH, execve.
//
// `berth-exec compile-seccomp IN OUT`: reads a filter description (lines written by
// internal/runtime/exec-helper-seccomp.ts from the OCI profile) and writes the classic BPF program
// libseccomp makes of it, so each exec only loads bytes.
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_RAISE 2
#define PR_CAP_AMBIENT_CLEAR_ALL 4
#endif
#define KEYCTL_JOIN_SESSION_KEYRING 1

#define MAX_LIST 256

static int log_fd = 2;

static void json_escape_write(int fd, const char *s) {
  char buf[4096];
  size_t n = 0;
  for (; *s && n < sizeof buf - 8; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') {
      buf[n++] = '\\';
      buf[n++] = (char)c;
    } else if (c < 0x20) {
      n += (size_t)snprintf(buf + n, sizeof buf - n, "\\u%04x", c);
    } else {
      buf[n++] = (char)c;
    }
  }
  ssize_t w = write(fd, buf, n);
  (void)w;
}

// A runc-style log line, then exit: the caller reads the message as runc's.
static void __attribute__((noreturn, format(printf, 1, 2))) fail(const char *fmt, ...) {
  char msg[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  static const char head[] = "{\"level\":\"error\",\"msg\":\"";
  static const char tail[] = "\"}\n";
  ssize_t w = write(log_fd, head, sizeof head - 1);
  json_escape_write(log_fd, msg);
  w = write(log_fd, tail, sizeof tail - 1);
  (void)w;
  _exit(255);
}

struct rlim {
  int resource;
  rlim_t soft, hard;
};

struct opts {
  const char *log, *pid_file, *seccomp_bpf, *cwd, *keyring;
  int pid_log;
  pid_t pid;
  unsigned long long start_time;
  int have_start_time;
  int ns_flags;
  const char *cgroup_procs[MAX_LIST];
  int n_cgroup;
  struct rlim rlimits[64];
  int n_rlimits;
  uid_t uid;
  gid_t gid;
  gid_t groups[MAX_LIST];
  int n_groups;
  int have_umask;
  mode_t umask_;
  uint64_t cap_bound, cap_eff, cap_perm, cap_inh, cap_amb;
  int no_new_privs;
  int have_oom;
  int oom_score_adj;
  unsigned int seccomp_flags;
  char *env[4096];
  int n_env;
  char **argv;
};

static unsigned long long parse_ull(const char *s, const char *what) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 0);
  if (errno || *end || end == s) fail("berth-exec: bad %s %s", what, s);
  return v;
}

static long long parse_ll(const char *s, const char *what) {
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 0);
  if (errno || *end || end == s) fail("berth-exec: bad %s %s", what, s);
  return v;
}

static int ns_flag(const char *name) {
  static const struct {
    const char *n;
    int f;
  } t[] = {{"mnt", CLONE_NEWNS},     {"uts", CLONE_NEWUTS},   {"ipc", CLONE_NEWIPC},
           {"net", CLONE_NEWNET},    {"pid", CLONE_NEWPID},   {"cgroup", CLONE_NEWCGROUP},
           {"user", CLONE_NEWUSER},  {"time", CLONE_NEWTIME}};
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
    if (strcmp(t[i].n, name) == 0) return t[i].f;
  fail("berth-exec: unknown namespace %s", name);
}

static void parse_list_u32(const char *s, gid_t *out, int *n) {
  if (!*s) return;
  char *copy = strdup(s), *save = NULL;
  for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
    if (*n >= MAX_LIST) fail("berth-exec: too many groups");
    out[(*n)++] = (gid_t)parse_ull(tok, "group");
  }
  free(copy);
}

static void parse_args(int argc, char **argv, struct opts *o) {
  memset(o, 0, sizeof *o);
  o->pid = -1;
  int i = 1;
  for (; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--") == 0) {
      i++;
      break;
    }
    if (strcmp(a, "--pid-log") == 0) {
      o->pid_log = 1;
      continue;
    }
    if (i + 1 >= argc) fail("berth-exec: %s needs a value", a);
    const char *v = argv[++i];
    if (strcmp(a, "--log") == 0) o->log = v;
    else if (strcmp(a, "--pid-file") == 0) o->pid_file = v;
    else if (strcmp(a, "--pid") == 0) o->pid = (pid_t)parse_ll(v, "pid");
    else if (strcmp(a, "--start-time") == 0) {
      o->start_time = parse_ull(v, "start time");
      o->have_start_time = 1;
    } else if (strcmp(a, "--ns") == 0) {
      char *copy = strdup(v), *save = NULL;
      for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save))
        o->ns_flags |= ns_flag(t);
      free(copy);
    } else if (strcmp(a, "--cgroup-procs") == 0) {
      if (o->n_cgroup >= MAX_LIST) fail("berth-exec: too many cgroups");
      o->cgroup_procs[o->n_cgroup++] = v;
    } else if (strcmp(a, "--rlimit") == 0) {
      if (o->n_rlimits >= 64) fail("berth-exec: too many rlimits");
      unsigned long long r, s, h;
      if (sscanf(v, "%llu:%llu:%llu", &r, &s, &h) != 3) fail("berth-exec: bad rlimit %s", v);
      o->rlimits[o->n_rlimits++] = (struct rlim){(int)r, (rlim_t)s, (rlim_t)h};
    } else if (strcmp(a, "--uid") == 0) o->uid = (uid_t)parse_ull(v, "uid");
    else if (strcmp(a, "--gid") == 0) o->gid = (gid_t)parse_ull(v, "gid");
    else if (strcmp(a, "--groups") == 0) parse_list_u32(v, o->groups, &o->n_groups);
    else if (strcmp(a, "--umask") == 0) {
      o->have_umask = 1;
      o->umask_ = (mode_t)parse_ull(v, "umask");
    } else if (strcmp(a, "--caps") == 0) {
      unsigned long long b, e, p, in, am;
      if (sscanf(v, "%llx:%llx:%llx:%llx:%llx", &b, &e, &p, &in, &am) != 5)
        fail("berth-exec: bad caps %s", v);
      o->cap_bound = b, o->cap_eff = e, o->cap_perm = p, o->cap_inh = in, o->cap_amb = am;
    } else if (strcmp(a, "--no-new-privs") == 0) o->no_new_privs = (int)parse_ll(v, "no-new-privs");
    else if (strcmp(a, "--oom-score-adj") == 0) {
      o->have_oom = 1;
      o->oom_score_adj = (int)parse_ll(v, "oom_score_adj");
    } else if (strcmp(a, "--seccomp-bpf") == 0) o->seccomp_bpf = v;
    else if (strcmp(a, "--seccomp-flags") == 0) o->seccomp_flags = (unsigned)parse_ull(v, "flags");
    else if (strcmp(a, "--cwd") == 0) o->cwd = v;
    else if (strcmp(a, "--session-keyring") == 0) o->keyring = v;
    else if (strcmp(a, "--env") == 0) {
      if (o->n_env >= 4095) fail("berth-exec: too many env entries");
      o->env[o->n_env++] = (char *)v;
    } else fail("berth-exec: unknown option %s", a);
  }
  if (i >= argc) fail("berth-exec: no command");
  if (o->pid <= 0) fail("berth-exec: --pid is required");
  o->argv = argv + i;
}

// Field 22 of /proc/PID/stat (after the parenthesised comm, which may contain anything), and the
// state letter: a zombie init is a stopped container.
static int read_stat(pid_t pid, unsigned long long *start, char *state) {
  char path[64], buf[2048];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return -1;
  buf[n] = 0;
  char *p = strrchr(buf, ')');
  if (!p || p[1] != ' ') return -1;
  p += 2;
  *state = *p;
  // fields from 3 (state) on; start time is field 22
  for (int field = 3; field < 22; field++) {
    p = strchr(p, ' ');
    if (!p) return -1;
    p++;
  }
  *start = strtoull(p, NULL, 10);
  return 0;
}

static int write_pid_file(const char *path, pid_t pid) {
  char tmp[PATH_MAX], buf[32];
  const char *slash = strrchr(path, '/');
  int dirlen = slash ? (int)(slash - path + 1) : 0;
  snprintf(tmp, sizeof tmp, "%.*s.%s", dirlen, path, slash ? slash + 1 : path);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return -1;
  int n = snprintf(buf, sizeof buf, "%d", (int)pid);
  int ok = write(fd, buf, (size_t)n) == n;
  close(fd);
  return ok && rename(tmp, path) == 0 ? 0 : -1;
}

/** Marks every fd from `low` up close-on-exec. */
static void cloexec_from(int low) {
#ifdef SYS_close_range
  if (syscall(SYS_close_range, (unsigned)low, ~0U, 4U /* CLOSE_RANGE_CLOEXEC */) == 0) return;
#endif
  DIR *d = opendir("/proc/self/fd");
  if (!d) fail("berth-exec: /proc/self/fd: %s", strerror(errno));
  int self = dirfd(d);
  for (struct dirent *e; (e = readdir(d));) {
    int fd = atoi(e->d_name);
    if (fd >= low && fd != self) fcntl(fd, F_SETFD, FD_CLOEXEC);
  }
  closedir(d);
}

/** The started line of --pid-log, in one write (atomic on a pipe). */
static int log_pid(pid_t pid) {
  char buf[96];
  int n = snprintf(buf, sizeof buf, "{\"level\":\"info\",\"msg\":\"started\",\"pid\":%d}\n", (int)pid);
  return write(log_fd, buf, (size_t)n) == n ? 0 : -1;
}

static void load_seccomp(const struct sock_filter *prog, size_t len, unsigned int flags) {
  struct sock_fprog fprog = {.len = (unsigned short)len, .filter = (struct sock_filter *)prog};
  if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &fprog) != 0)
    fail("unable to init seccomp: error loading seccomp filter into kernel: %s", strerror(errno));
}

static const char *env_get(struct opts *o, const char *name) {
  size_t n = strlen(name);
  for (int i = 0; i < o->n_env; i++)
    if (strncmp(o->env[i], name, n) == 0 && o->env[i][n] == '=') return o->env[i] + n + 1;
  return NULL;
}

// runc sets HOME from the container's /etc/passwd when the process env has none ("/" if the uid
// has no entry).
static void ensure_home(struct opts *o) {
  if (env_get(o, "HOME")) return;
  static char home_env[PATH_MAX + 8];
  const char *home = "/";
  static char found[PATH_MAX];
  FILE *f = fopen("/etc/passwd", "re");
  if (f) {
    char line[4096];
    while (fgets(line, sizeof line, f)) {
      // name:pw:uid:gid:gecos:home:shell
      char *fields[7] = {0};
      int nf = 0;
      char *p = line;
      fields[nf++] = p;
      while (nf < 7 && (p = strchr(p, ':'))) {
        *p++ = 0;
        fields[nf++] = p;
      }
      if (nf < 6) continue;
      char *end;
      unsigned long uid = strtoul(fields[2], &end, 10);
      if (*fields[2] == 0 || *end != 0 || uid != o->uid) continue;
      snprintf(found, sizeof found, "%s", fields[5]);
      home = found;
      break;
    }
    fclose(f);
  }
  snprintf(home_env, sizeof home_env, "HOME=%s", home);
  if (o->n_env < 4095) o->env[o->n_env++] = home_env;
}

// Go's exec.LookPath as runc uses it: names with a slash are taken as they are; others are looked
// up in the process env's PATH for a non-directory with an execute bit.
// Go's error text: lower-case strerror ("stat /x: no such file or directory").
static const char *go_err(int e, char *buf, size_t size) {
  snprintf(buf, size, "%s", strerror(e));
  if (buf[0] >= 'A' && buf[0] <= 'Z') buf[0] = (char)(buf[0] - 'A' + 'a');
  return buf;
}

static const char *look_path(struct opts *o, const char *file, char *buf, size_t size) {
  if (strchr(file, '/')) {
    struct stat st;
    char e[128];
    if (stat(file, &st) != 0)
      fail("exec failed: unable to start container process: exec: \"%s\": stat %s: %s", file, file,
           go_err(errno, e, sizeof e));
    // Go's findExecutable: a directory, like a file without an execute bit, is "permission denied"
    if (S_ISDIR(st.st_mode) || !(st.st_mode & 0111))
      fail("exec failed: unable to start container process: exec: \"%s\": permission denied", file);
    return file;
  }
  const char *path = env_get(o, "PATH");
  if (!path) path = "";
  const char *p = path;
  while (1) {
    const char *colon = strchr(p, ':');
    size_t len = colon ? (size_t)(colon - p) : strlen(p);
    if (len == 0) snprintf(buf, size, "./%s", file);
    else snprintf(buf, size, "%.*s/%s", (int)len, p, file);
    struct stat st;
    if (stat(buf, &st) == 0 && !S_ISDIR(st.st_mode) && (st.st_mode & 0111)) return buf;
    if (!colon) break;
    p = colon + 1;
  }
  fail("exec failed: unable to start container process: exec: \"%s\": executable file not found "
       "in $PATH",
       file);
}

static int cap_last(void) {
  int fd = open("/proc/sys/kernel/cap_last_cap", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 40;
  char buf[16] = {0};
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  return n > 0 ? atoi(buf) : 40;
}

static void apply_caps(struct opts *o, int phase_bounding) {
  int last = cap_last();
  if (phase_bounding) {
    for (int c = 0; c <= last; c++) {
      if (o->cap_bound & (1ULL << c)) continue;
      if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) != 0 && errno != EINVAL)
        fail("unable to apply caps: drop bounding cap %d: %s", c, strerror(errno));
    }
    return;
  }
  struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
  struct __user_cap_data_struct data[2];
  uint64_t mask = last >= 63 ? ~0ULL : ((1ULL << (last + 1)) - 1);
  uint64_t e = o->cap_eff & mask, p = o->cap_perm & mask, i = o->cap_inh & mask;
  data[0].effective = (uint32_t)e, data[1].effective = (uint32_t)(e >> 32);
  data[0].permitted = (uint32_t)p, data[1].permitted = (uint32_t)(p >> 32);
  data[0].inheritable = (uint32_t)i, data[1].inheritable = (uint32_t)(i >> 32);
  if (syscall(SYS_capset, &hdr, data) != 0) fail("unable to apply caps: capset: %s", strerror(errno));
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL)
    fail("unable to apply caps: clear ambient: %s", strerror(errno));
  for (int c = 0; c <= last; c++) {
    if (!(o->cap_amb & (1ULL << c))) continue;
    // runc raises each and ignores the ones the kernel refuses (not permitted and inheritable)
    (void)prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0);
  }
}

static void __attribute__((noreturn)) run_command(struct opts *o, const struct sock_filter *bpf,
                                                  size_t bpf_len) {
  if (setsid() < 0) fail("berth-exec: setsid: %s", strerror(errno));
  if (o->keyring && syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, o->keyring) < 0 &&
      errno != ENOSYS)
    fail("unable to join session keyring: %s", strerror(errno));
  if (o->no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
    fail("unable to set no_new_privs: %s", strerror(errno));
  if (bpf && !o->no_new_privs) load_seccomp(bpf, bpf_len, o->seccomp_flags);
  apply_caps(o, 1);
  if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) fail("unable to set keep caps: %s", strerror(errno));
  int chdir_done = o->cwd && chdir(o->cwd) == 0;
  // In a user namespace whose setgroups is "deny", runc leaves the groups alone.
  int allow_groups = 1;
  int sfd = open("/proc/self/setgroups", O_RDONLY | O_CLOEXEC);
  if (sfd >= 0) {
    char b[8] = {0};
    if (read(sfd, b, sizeof b - 1) > 0 && strncmp(b, "deny", 4) == 0) allow_groups = 0;
    close(sfd);
  }
  if (allow_groups && setgroups((size_t)o->n_groups, o->groups) != 0)
    fail("unable to setup user: setgroups: %s", strerror(errno));
  if (syscall(SYS_setresgid, o->gid, o->gid, o->gid) != 0)
    fail("unable to setup user: setgid: %s", strerror(errno));
  if (syscall(SYS_setresuid, o->uid, o->uid, o->uid) != 0)
    fail("unable to setup user: setuid: %s", strerror(errno));
  ensure_home(o);
  if (o->cwd && !chdir_done && chdir(o->cwd) != 0)
    fail("chdir to cwd (\"%s\") set in config.json failed: %s", o->cwd, strerror(errno));
  if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) != 0) fail("unable to clear keep caps: %s", strerror(errno));
  apply_caps(o, 0);
  if (bpf && o->no_new_privs) load_seccomp(bpf, bpf_len, o->seccomp_flags);
  char buf[PATH_MAX];
  const char *file = look_path(o, o->argv[0], buf, sizeof buf);
  o->env[o->n_env] = NULL;
  execve(file, o->argv, o->env);
  fail("exec failed: unable to start container process: exec: \"%s\": %s", o->argv[0],
       strerror(errno));
}

static int exec_main(int argc, char **argv) {
  struct opts o;
  parse_args(argc, argv, &o);
  if (o.log) {
    int fd = open(o.log, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fd >= 0) log_fd = fd;
  }
  // The command gets stdin, stdout and stderr only, as from runc exec: whatever else we inherited
  // (the caller's log pipe on fd 3) is closed when it execs.
  cloexec_from(3);
  int pidfd = (int)syscall(SYS_pidfd_open, o.pid, 0);
  if (pidfd < 0) fail("cannot exec in a stopped container");
  fcntl(pidfd, F_SETFD, FD_CLOEXEC);
  // The pidfd pins the process; its start time proves it is still the container's init (pids
  // are reused).
  unsigned long long start = 0;
  char state = 0;
  if (read_stat(o.pid, &start, &state) != 0 || state == 'Z' || state == 'X' ||
      (o.have_start_time && start != o.start_time))
    fail("cannot exec in a stopped container");

  int cg_fds[MAX_LIST];
  for (int i = 0; i < o.n_cgroup; i++) {
    cg_fds[i] = open(o.cgroup_procs[i], O_WRONLY | O_CLOEXEC);
    if (cg_fds[i] < 0) fail("failed to join cgroup %s: %s", o.cgroup_procs[i], strerror(errno));
  }
  struct sock_filter *bpf = NULL;
  size_t bpf_len = 0;
  if (o.seccomp_bpf) {
    int fd = open(o.seccomp_bpf, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || st.st_size == 0 || st.st_size % sizeof(struct sock_filter))
      fail("berth-exec: seccomp program %s: %s", o.seccomp_bpf, strerror(errno));
    bpf = malloc((size_t)st.st_size);
    if (!bpf || read(fd, bpf, (size_t)st.st_size) != st.st_size)
      fail("berth-exec: read seccomp program: %s", strerror(errno));
    close(fd);
    bpf_len = (size_t)st.st_size / sizeof(struct sock_filter);
  }

  if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0)
    fail("berth-exec: subreaper: %s", strerror(errno));
  int pp[2];
  if (pipe2(pp, O_CLOEXEC) != 0) fail("berth-exec: pipe: %s", strerror(errno));

  pid_t setup = fork();
  if (setup < 0) fail("berth-exec: fork: %s", strerror(errno));
  if (setup == 0) {
    close(pp[0]);
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%d", (int)getpid());
    for (int i = 0; i < o.n_cgroup; i++)
      if (write(cg_fds[i], buf, (size_t)n) != n)
        fail("failed to join cgroup %s: %s", o.cgroup_procs[i], strerror(errno));
    if (o.have_oom) {
      int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
      n = snprintf(buf, sizeof buf, "%d", o.oom_score_adj);
      if (fd < 0 || write(fd, buf, (size_t)n) != n)
        fail("failed to set oom_score_adj: %s", strerror(errno));
      close(fd);
    }
    for (int i = 0; i < o.n_rlimits; i++) {
      struct rlimit rl = {o.rlimits[i].soft, o.rlimits[i].hard};
      if (setrlimit(o.rlimits[i].resource, &rl) != 0)
        fail("error setting rlimit type %d: %s", o.rlimits[i].resource, strerror(errno));
    }
    if (o.have_umask) umask(o.umask_);
    else umask(022);
    if (o.ns_flags && setns(pidfd, o.ns_flags) != 0)
      fail("failed to join the container's namespaces: %s", strerror(errno));
    pid_t cmd = fork();
    if (cmd < 0) fail("berth-exec: fork: %s", strerror(errno));
    if (cmd == 0) run_command(&o, bpf, bpf_len);
    n = snprintf(buf, sizeof buf, "%d", (int)cmd);
    if (write(pp[1], buf, (size_t)n) != n) _exit(255);
    _exit(0);
  }
  close(pp[1]);
  for (int i = 0; i < o.n_cgroup; i++) close(cg_fds[i]);
  char buf[32] = {0};
  ssize_t n = read(pp[0], buf, sizeof buf - 1);
  close(pp[0]);
  pid_t cmd = n > 0 ? (pid_t)atoi(buf) : -1;
  int status;
  if (cmd <= 0) {
    // the setup child failed (and logged why)
    while (waitpid(setup, &status, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 255;
  }
  if (o.pid_file && write_pid_file(o.pid_file, cmd) != 0) {
    kill(-cmd, SIGKILL);
    kill(cmd, SIGKILL);
    fail("berth-exec: write pid file %s: %s", o.pid_file, strerror(errno));
  }
  if (o.pid_log && log_pid(cmd) != 0) {
    kill(-cmd, SIGKILL);
    kill(cmd, SIGKILL);
    fail("berth-exec: report pid on the log: %s", strerror(errno));
  }
  for (;;) {
    pid_t w = waitpid(-1, &status, 0);
    if (w < 0) {
      if (errno == EINTR) continue;
      return 255;
    }
    if (w != cmd) continue;
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  }
}

// ---- compile-seccomp ----

static uint32_t action_of(const char *name, unsigned errno_ret) {
  if (strcmp(name, "kill") == 0) return SCMP_ACT_KILL;
  if (strcmp(name, "kill_thread") == 0) return SCMP_ACT_KILL_THREAD;
  if (strcmp(name, "kill_process") == 0) return SCMP_ACT_KILL_PROCESS;
  if (strcmp(name, "trap") == 0) return SCMP_ACT_TRAP;
  if (strcmp(name, "errno") == 0) return SCMP_ACT_ERRNO(errno_ret);
  if (strcmp(name, "trace") == 0) return SCMP_ACT_TRACE(errno_ret);
  if (strcmp(name, "allow") == 0) return SCMP_ACT_ALLOW;
  if (strcmp(name, "log") == 0) return SCMP_ACT_LOG;
  fprintf(stderr, "unknown seccomp action %s\n", name);
  exit(2);
}

static enum scmp_compare op_of(const char *name) {
  static const struct {
    const char *n;
    enum scmp_compare c;
  } t[] = {{"ne", SCMP_CMP_NE}, {"lt", SCMP_CMP_LT}, {"le", SCMP_CMP_LE},
           {"eq", SCMP_CMP_EQ}, {"ge", SCMP_CMP_GE}, {"gt", SCMP_CMP_GT},
           {"masked_eq", SCMP_CMP_MASKED_EQ}};
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
    if (strcmp(t[i].n, name) == 0) return t[i].c;
  fprintf(stderr, "unknown seccomp operator %s\n", name);
  exit(2);
}

// Input lines:
//   default ACTION ERRNO
//   arch NAME                     (libseccomp's names: x86_64, x86, x32, aarch64, ...)
//   rule ACTION ERRNO SYSCALL N [INDEX OP VALUE VALUE_TWO]*N   (N conditions, ANDed)
// Rules whose action is the default one and syscalls unknown to libseccomp are skipped, as runc
// does; the caller already split rules with several conditions on one argument (runc's OR case).
static int compile_main(const char *in, const char *out) {
  FILE *f = fopen(in, "re");
  if (!f) {
    fprintf(stderr, "%s: %s\n", in, strerror(errno));
    return 2;
  }
  char line[8192], act[32];
  unsigned eno = 0;
  if (!fgets(line, sizeof line, f) || sscanf(line, "default %31s %u", act, &eno) != 2) {
    fprintf(stderr, "first line must be: default ACTION ERRNO\n");
    return 2;
  }
  uint32_t def = action_of(act, eno);
  scmp_filter_ctx ctx = seccomp_init(def);
  if (!ctx) {
    fprintf(stderr, "seccomp_init failed\n");
    return 2;
  }
  seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
  while (fgets(line, sizeof line, f)) {
    char name[128];
    if (sscanf(line, "arch %127s", name) == 1) {
      uint32_t arch = seccomp_arch_resolve_name(name);
      if (arch == 0) {
        fprintf(stderr, "unknown architecture %s\n", name);
        return 2;
      }
      int r = seccomp_arch_add(ctx, arch);
      if (r != 0 && r != -EEXIST) {
        fprintf(stderr, "add architecture %s: %s\n", name, strerror(-r));
        return 2;
      }
      continue;
    }
    int n = 0, off = 0;
    if (sscanf(line, "rule %31s %u %127s %d%n", act, &eno, name, &n, &off) != 4) {
      if (line[0] == '\n' || line[0] == 0) continue;
      fprintf(stderr, "bad line: %s", line);
      return 2;
    }
    uint32_t a = action_of(act, eno);
    if (a == def) continue;
    int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR) continue;
    struct scmp_arg_cmp conds[6];
    if (n < 0 || n > 6) {
      fprintf(stderr, "bad condition count in: %s", line);
      return 2;
    }
    const char *p = line + off;
    for (int i = 0; i < n; i++) {
      unsigned idx;
      char op[16];
      unsigned long long v1, v2;
      int used = 0;
      if (sscanf(p, " %u %15s %llu %llu%n", &idx, op, &v1, &v2, &used) != 4) {
        fprintf(stderr, "bad condition in: %s", line);
        return 2;
      }
      p += used;
      conds[i] = (struct scmp_arg_cmp){.arg = idx, .op = op_of(op), .datum_a = v1, .datum_b = v2};
    }
    int r = seccomp_rule_add_array(ctx, a, nr, (unsigned)n, conds);
    if (r != 0) {
      fprintf(stderr, "add rule for %s: %s\n", name, strerror(-r));
      return 2;
    }
  }
  fclose(f);
  int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    fprintf(stderr, "%s: %s\n", out, strerror(errno));
    return 2;
  }
  int r = seccomp_export_bpf(ctx, fd);
  if (r != 0 || fsync(fd) != 0) {
    fprintf(stderr, "export: %s\n", strerror(r ? -r : errno));
    return 2;
  }
  close(fd);
  seccomp_release(ctx);
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 4 && strcmp(argv[1], "compile-seccomp") == 0) return compile_main(argv[2], argv[3]);
  return exec_main(argc, argv);
}
