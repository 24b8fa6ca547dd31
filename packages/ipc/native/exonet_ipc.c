// exonet_ipc: the little the ring code cannot do from JavaScript between processes.
//  - POSIX shared memory: shm_open + ftruncate + mmap(MAP_SHARED), exposed as an external ArrayBuffer, and an
//    explicit unmap that detaches the ArrayBuffer first so no view can touch unmapped memory.
//  - A futex doorbell on a 32-bit word of that memory: the same wait/notify contract as Atomics.wait/notify
//    (which V8 refuses on a non-shared ArrayBuffer). futex(2) without FUTEX_PRIVATE_FLAG keys the word by
//    the shared mapping, so it works across processes. The async wait blocks in a thread of its own and
//    resolves a promise on the event loop, so the loop itself never blocks.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <math.h>
#include <node_api.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define WAIT_OK 0
#define WAIT_NOT_EQUAL 1
#define WAIT_TIMED_OUT 2

// One mapping per ArrayBuffer; `unmapped` guards against a second munmap from the finalizer.
typedef struct mapping {
  void *addr;
  size_t len;
  int unmapped;
  struct mapping *next;
} mapping;

// Mappings are shared by every thread that loaded the addon (worker threads), hence the lock.
static pthread_mutex_t mappings_lock = PTHREAD_MUTEX_INITIALIZER;
static mapping *mappings = NULL;

static napi_value throw_errno(napi_env env, const char *what, int err) {
  char msg[256];
  snprintf(msg, sizeof msg, "EXO_ERR_IPC_NATIVE: %s: %s", what, strerror(err));
  napi_throw_error(env, "EXO_ERR_IPC_NATIVE", msg);
  return NULL;
}

static napi_value throw_arg(napi_env env, const char *msg) {
  napi_throw_type_error(env, "EXO_ERR_IPC_INVALID_ARGUMENT", msg);
  return NULL;
}

static int get_string(napi_env env, napi_value v, char *buf, size_t size) {
  size_t len = 0;
  if (napi_get_value_string_utf8(env, v, buf, size, &len) != napi_ok || len == 0 || len >= size - 1) return 0;
  return buf[0] == '/';
}

static void finalize_mapping(napi_env env, void *data, void *hint) {
  (void)env;
  (void)data;
  mapping *m = hint;
  pthread_mutex_lock(&mappings_lock);
  for (mapping **p = &mappings; *p; p = &(*p)->next) {
    if (*p == m) {
      *p = m->next;
      break;
    }
  }
  pthread_mutex_unlock(&mappings_lock);
  if (!m->unmapped) munmap(m->addr, m->len);
  free(m);
}

static napi_value wrap_mapping(napi_env env, void *addr, size_t len) {
  mapping *m = calloc(1, sizeof *m);
  if (!m) {
    munmap(addr, len);
    return throw_errno(env, "calloc", ENOMEM);
  }
  m->addr = addr;
  m->len = len;
  pthread_mutex_lock(&mappings_lock);
  m->next = mappings;
  mappings = m;
  pthread_mutex_unlock(&mappings_lock);
  napi_value ab;
  if (napi_create_external_arraybuffer(env, addr, len, finalize_mapping, m, &ab) != napi_ok) {
    finalize_mapping(env, addr, m);
    return NULL;
  }
  return ab;
}

// shmCreate(name, size): a new segment (O_EXCL: never silently reuse a stale one), mapped read-write.
static napi_value shm_create(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  char name[256];
  double size = 0;
  if (argc < 2 || !get_string(env, argv[0], name, sizeof name)) return throw_arg(env, "name: expected \"/name\"");
  if (napi_get_value_double(env, argv[1], &size) != napi_ok || !(size >= 1) || size > 1e12 || size != floor(size))
    return throw_arg(env, "size: expected a positive integer");
  int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
  if (fd < 0) return throw_errno(env, "shm_open", errno);
  if (ftruncate(fd, (off_t)size) != 0) {
    int err = errno;
    close(fd);
    shm_unlink(name);
    return throw_errno(env, "ftruncate", err);
  }
  void *addr = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  int err = errno;
  close(fd);
  if (addr == MAP_FAILED) {
    shm_unlink(name);
    return throw_errno(env, "mmap", err);
  }
  return wrap_mapping(env, addr, (size_t)size);
}

// shmOpen(name): maps an existing segment, whole.
static napi_value shm_open_js(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  char name[256];
  if (argc < 1 || !get_string(env, argv[0], name, sizeof name)) return throw_arg(env, "name: expected \"/name\"");
  int fd = shm_open(name, O_RDWR, 0);
  if (fd < 0) return throw_errno(env, "shm_open", errno);
  struct stat st;
  if (fstat(fd, &st) != 0 || st.st_size <= 0) {
    int err = st.st_size <= 0 ? EINVAL : errno;
    close(fd);
    return throw_errno(env, "fstat", err);
  }
  void *addr = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  int err = errno;
  close(fd);
  if (addr == MAP_FAILED) return throw_errno(env, "mmap", err);
  return wrap_mapping(env, addr, (size_t)st.st_size);
}

// shmUnlink(name): true if removed, false if it did not exist.
static napi_value shm_unlink_js(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  char name[256];
  if (argc < 1 || !get_string(env, argv[0], name, sizeof name)) return throw_arg(env, "name: expected \"/name\"");
  int rc = shm_unlink(name);
  if (rc != 0 && errno != ENOENT) return throw_errno(env, "shm_unlink", errno);
  napi_value out;
  napi_get_boolean(env, rc == 0, &out);
  return out;
}

// unmap(arrayBuffer): detaches the buffer (every view becomes empty), then munmap. Idempotent.
static napi_value unmap_js(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  void *data = NULL;
  size_t len = 0;
  if (argc < 1 || napi_get_arraybuffer_info(env, argv[0], &data, &len) != napi_ok)
    return throw_arg(env, "expected an ArrayBuffer from shmCreate or shmOpen");
  if (data == NULL || len == 0) return NULL;  // already detached
  mapping *found = NULL;
  pthread_mutex_lock(&mappings_lock);
  for (mapping *m = mappings; m; m = m->next)
    if (m->addr == data && !m->unmapped) found = m;
  if (found) found->unmapped = 1;
  pthread_mutex_unlock(&mappings_lock);
  if (!found) return throw_arg(env, "expected an ArrayBuffer from shmCreate or shmOpen");
  napi_detach_arraybuffer(env, argv[0]);
  munmap(found->addr, found->len);
  return NULL;
}

// Resolves (arrayBuffer, byteOffset) to an aligned word inside it.
static uint32_t *word_at(napi_env env, napi_value ab, napi_value off) {
  void *data = NULL;
  size_t len = 0;
  double offset = -1;
  if (napi_get_arraybuffer_info(env, ab, &data, &len) != napi_ok || data == NULL) {
    throw_arg(env, "expected a mapped ArrayBuffer");
    return NULL;
  }
  if (napi_get_value_double(env, off, &offset) != napi_ok || !(offset >= 0) || offset != floor(offset) ||
      ((uint64_t)offset & 3) != 0 || offset + 4 > (double)len) {
    throw_arg(env, "byteOffset: expected an aligned word inside the buffer");
    return NULL;
  }
  return (uint32_t *)((char *)data + (size_t)offset);
}

static int futex_wait(uint32_t *addr, uint32_t expected, double timeout_ms) {
  struct timespec ts, *tsp = NULL;
  if (isfinite(timeout_ms) && timeout_ms >= 0) {
    ts.tv_sec = (time_t)(timeout_ms / 1000);
    ts.tv_nsec = (long)((timeout_ms - (double)ts.tv_sec * 1000) * 1e6);
    tsp = &ts;
  }
  long rc = syscall(SYS_futex, addr, FUTEX_WAIT, expected, tsp, NULL, 0);
  if (rc == 0) return WAIT_OK;
  if (errno == EAGAIN) return WAIT_NOT_EQUAL;
  if (errno == ETIMEDOUT) return WAIT_TIMED_OUT;
  return WAIT_OK;  // EINTR and the like: a spurious wake-up; the caller re-checks the ring
}

static int get_wait_args(napi_env env, napi_callback_info info, napi_value *ab, uint32_t **addr, uint32_t *expected,
                         double *timeout_ms) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 4) {
    throw_arg(env, "expected (arrayBuffer, byteOffset, expected, timeoutMs)");
    return 0;
  }
  *ab = argv[0];
  *addr = word_at(env, argv[0], argv[1]);
  if (!*addr) return 0;
  int32_t e = 0;
  if (napi_get_value_int32(env, argv[2], &e) != napi_ok || napi_get_value_double(env, argv[3], timeout_ms) != napi_ok) {
    throw_arg(env, "expected: an int32; timeoutMs: a number");
    return 0;
  }
  *expected = (uint32_t)e;
  return 1;
}

// futexWait(ab, byteOffset, expected, timeoutMs): 0 woken, 1 not-equal, 2 timed out. Blocks the calling thread.
static napi_value futex_wait_js(napi_env env, napi_callback_info info) {
  napi_value ab;
  uint32_t *addr;
  uint32_t expected;
  double timeout_ms;
  if (!get_wait_args(env, info, &ab, &addr, &expected, &timeout_ms)) return NULL;
  napi_value out;
  napi_create_int32(env, futex_wait(addr, expected, timeout_ms), &out);
  return out;
}

typedef struct wait_req {
  napi_threadsafe_function tsfn;
  napi_deferred deferred;
  napi_ref buffer_ref;  // keeps the mapping alive while the thread waits on it
  uint32_t *addr;
  uint32_t expected;
  double timeout_ms;
  int result;
} wait_req;

static void wait_done(napi_env env, napi_value cb, void *context, void *data) {
  (void)cb;
  (void)context;
  wait_req *r = data;
  if (env != NULL) {
    napi_value v;
    napi_create_int32(env, r->result, &v);
    napi_resolve_deferred(env, r->deferred, v);
    napi_delete_reference(env, r->buffer_ref);
  }
  free(r);
}

static void *wait_thread(void *p) {
  wait_req *r = p;
  napi_threadsafe_function tsfn = r->tsfn;
  r->result = futex_wait(r->addr, r->expected, r->timeout_ms);
  if (napi_call_threadsafe_function(tsfn, r, napi_tsfn_blocking) != napi_ok) free(r);
  napi_release_threadsafe_function(tsfn, napi_tsfn_release);
  return NULL;
}

// futexWaitAsync(ab, byteOffset, expected, timeoutMs): a promise of the same result, from a thread of its own.
static napi_value futex_wait_async_js(napi_env env, napi_callback_info info) {
  napi_value ab;
  uint32_t *addr;
  uint32_t expected;
  double timeout_ms;
  if (!get_wait_args(env, info, &ab, &addr, &expected, &timeout_ms)) return NULL;
  napi_value promise;
  wait_req *r = calloc(1, sizeof *r);
  if (!r) return throw_errno(env, "calloc", ENOMEM);
  r->addr = addr;
  r->expected = expected;
  r->timeout_ms = timeout_ms;
  napi_value name;
  napi_create_string_utf8(env, "exonet-ipc-futex-wait", NAPI_AUTO_LENGTH, &name);
  if (napi_create_promise(env, &r->deferred, &promise) != napi_ok ||
      napi_create_reference(env, ab, 1, &r->buffer_ref) != napi_ok ||
      napi_create_threadsafe_function(env, NULL, NULL, name, 0, 1, NULL, NULL, NULL, wait_done, &r->tsfn) != napi_ok) {
    free(r);
    return throw_errno(env, "napi", EINVAL);
  }
  pthread_t t;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, 64 * 1024);
  int rc = pthread_create(&t, &attr, wait_thread, r);
  pthread_attr_destroy(&attr);
  if (rc != 0) {
    // Could not start a thread: answer at once; the caller re-checks the ring and waits again.
    r->result = WAIT_OK;
    napi_call_threadsafe_function(r->tsfn, r, napi_tsfn_blocking);
    napi_release_threadsafe_function(r->tsfn, napi_tsfn_release);
  }
  return promise;
}

// futexWake(ab, byteOffset): wakes every waiter on the word; returns how many woke.
static napi_value futex_wake_js(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 2) return throw_arg(env, "expected (arrayBuffer, byteOffset)");
  uint32_t *addr = word_at(env, argv[0], argv[1]);
  if (!addr) return NULL;
  long rc = syscall(SYS_futex, addr, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
  napi_value out;
  napi_create_int32(env, rc < 0 ? 0 : (int32_t)rc, &out);
  return out;
}

// pidfdOpen(pid): a pidfd (Linux >= 5.3) for watching a task process: it becomes readable when the process
// exits, zombie or not, and it names that process even if its pid is later reused.
static napi_value pidfd_open_js(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t pid = 0;
  if (argc < 1 || napi_get_value_int32(env, argv[0], &pid) != napi_ok || pid <= 0)
    return throw_arg(env, "pid: expected a positive integer");
  long fd = syscall(SYS_pidfd_open, pid, 0);
  if (fd < 0) return throw_errno(env, "pidfd_open", errno);
  napi_value out;
  napi_create_int32(env, (int32_t)fd, &out);
  return out;
}

// peerCredentials(fd): who is at the other end of a connected Unix domain socket, as the kernel recorded it
// when the peer connected (SO_PEERCRED): { pid, uid, gid }. The kernel's word, not the peer's claim, is
// what lets a driver name the principal of a process that attaches through its socket.
static napi_value peer_credentials_js(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd = -1;
  if (argc < 1 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0)
    return throw_arg(env, "fd: expected a non-negative integer");
  struct ucred cred;
  socklen_t len = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return throw_errno(env, "getsockopt SO_PEERCRED", errno);
  napi_value out, pid, uid, gid;
  napi_create_object(env, &out);
  napi_create_int32(env, (int32_t)cred.pid, &pid);
  napi_create_uint32(env, (uint32_t)cred.uid, &uid);
  napi_create_uint32(env, (uint32_t)cred.gid, &gid);
  napi_set_named_property(env, out, "pid", pid);
  napi_set_named_property(env, out, "uid", uid);
  napi_set_named_property(env, out, "gid", gid);
  return out;
}

// closeFd(fd)
static napi_value close_fd_js(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd = -1;
  if (argc < 1 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0) return throw_arg(env, "fd");
  close(fd);
  return NULL;
}

typedef struct poll_req {
  napi_threadsafe_function tsfn;
  napi_deferred deferred;
  int fd;
  int timeout_ms;
  int result;
} poll_req;

static void poll_done(napi_env env, napi_value cb, void *context, void *data) {
  (void)cb;
  (void)context;
  poll_req *r = data;
  if (env != NULL) {
    napi_value v;
    napi_create_int32(env, r->result, &v);
    napi_resolve_deferred(env, r->deferred, v);
  }
  free(r);
}

static void *poll_thread(void *p) {
  poll_req *r = p;
  napi_threadsafe_function tsfn = r->tsfn;
  struct pollfd pfd = {.fd = r->fd, .events = POLLIN};
  int rc = poll(&pfd, 1, r->timeout_ms);
  r->result = rc > 0 ? WAIT_OK : rc == 0 ? WAIT_TIMED_OUT : -errno;
  if (napi_call_threadsafe_function(tsfn, r, napi_tsfn_blocking) != napi_ok) free(r);
  napi_release_threadsafe_function(tsfn, napi_tsfn_release);
  return NULL;
}

// pidfdWaitAsync(fd, timeoutMs): 0 once the process exited, 2 on timeout, -errno on error. The wait does not
// keep the event loop alive: a watcher must not stop a driver from exiting.
static napi_value pidfd_wait_async_js(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd = -1, timeout = -1;
  if (argc < 2 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0 ||
      napi_get_value_int32(env, argv[1], &timeout) != napi_ok)
    return throw_arg(env, "expected (fd, timeoutMs)");
  poll_req *r = calloc(1, sizeof *r);
  if (!r) return throw_errno(env, "calloc", ENOMEM);
  r->fd = fd;
  r->timeout_ms = timeout < 0 ? -1 : timeout;
  napi_value promise, name;
  napi_create_string_utf8(env, "exonet-ipc-pidfd-wait", NAPI_AUTO_LENGTH, &name);
  if (napi_create_promise(env, &r->deferred, &promise) != napi_ok ||
      napi_create_threadsafe_function(env, NULL, NULL, name, 0, 1, NULL, NULL, NULL, poll_done, &r->tsfn) != napi_ok) {
    free(r);
    return throw_errno(env, "napi", EINVAL);
  }
  napi_unref_threadsafe_function(env, r->tsfn);
  pthread_t t;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, 64 * 1024);
  int rc = pthread_create(&t, &attr, poll_thread, r);
  pthread_attr_destroy(&attr);
  if (rc != 0) {
    r->result = WAIT_TIMED_OUT;
    napi_call_threadsafe_function(r->tsfn, r, napi_tsfn_blocking);
    napi_release_threadsafe_function(r->tsfn, napi_tsfn_release);
  }
  return promise;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor props[] = {
      {"shmCreate", NULL, shm_create, NULL, NULL, NULL, napi_enumerable, NULL},
      {"shmOpen", NULL, shm_open_js, NULL, NULL, NULL, napi_enumerable, NULL},
      {"shmUnlink", NULL, shm_unlink_js, NULL, NULL, NULL, napi_enumerable, NULL},
      {"unmap", NULL, unmap_js, NULL, NULL, NULL, napi_enumerable, NULL},
      {"futexWait", NULL, futex_wait_js, NULL, NULL, NULL, napi_enumerable, NULL},
      {"futexWaitAsync", NULL, futex_wait_async_js, NULL, NULL, NULL, napi_enumerable, NULL},
      {"futexWake", NULL, futex_wake_js, NULL, NULL, NULL, napi_enumerable, NULL},
      {"pidfdOpen", NULL, pidfd_open_js, NULL, NULL, NULL, napi_enumerable, NULL},
      {"pidfdWaitAsync", NULL, pidfd_wait_async_js, NULL, NULL, NULL, napi_enumerable, NULL},
      {"closeFd", NULL, close_fd_js, NULL, NULL, NULL, napi_enumerable, NULL},
      {"peerCredentials", NULL, peer_credentials_js, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}
