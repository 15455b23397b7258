// Starts a program with posix_spawn(3) and reports its exit through a pidfd
// watched on Node's own loop. Why: README.md next to this file ("spawn").
//
// spawn(file, args, onStarted, onExit) starts `file` (looked up in PATH; it is
// also argv[0]) with args, stdin from /dev/null and stdout and stderr both into
// one pipe, from a thread-pool thread. onStarted(err, child) follows: err has
// the failing step's code (ENOENT, ...) and syscall, and nothing is left open;
// or child is { fd, kill(signal) }, fd the pipe's read end for JS to read and
// close. onExit(code, signal) is called once, when the child has exited (code
// -1 when a signal ended it, signal 0 otherwise); never after an error.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <node_api.h>
#include "report.h"
#include <uv.h>

extern char **environ;

/**
 * The child's pidfd while it is watched, -1 after its exit (the fd number may
 * then belong to anything): what kill() reads. Freed by whichever lets go of
 * it last: the exit or the collection of the JS object holding kill().
 */
typedef struct {
  int pidfd;
  int refs;
} kill_cell_t;

typedef struct {
  uv_poll_t poll;
  napi_env env;
  napi_ref on_exit;
  napi_async_context async;
  kill_cell_t *cell;
} child_t;

static void release_cell(kill_cell_t *cell) {
  if (--cell->refs == 0) free(cell);
}

static void finalize_cell(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  release_cell(data);
}

static void free_child(uv_handle_t *h) {
  child_t *c = h->data;
  close(c->cell->pidfd);
  c->cell->pidfd = -1;
  release_cell(c->cell);
  free(c);
}

static void on_exited(uv_poll_t *h, int status, int events) {
  (void)status;
  (void)events;
  child_t *c = h->data;
  siginfo_t info;
  memset(&info, 0, sizeof info);
  // the pidfd is readable once the child is a zombie: this reaps it without blocking
  int r;
  do r = waitid(P_PIDFD, c->cell->pidfd, &info, WEXITED); while (r < 0 && errno == EINTR);
  int code = -1, sig = 0;
  if (r == 0 && info.si_code == CLD_EXITED) code = info.si_status;
  else if (r == 0) sig = info.si_status;
  uv_poll_stop(h);
  napi_env env = c->env;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  napi_value fn, global, args[2], result;
  napi_get_reference_value(env, c->on_exit, &fn);
  napi_get_global(env, &global);
  napi_create_int32(env, code, &args[0]);
  napi_create_int32(env, sig, &args[1]);
  // make_callback: promise reactions and nextTicks the callback queues run when it returns
  if (napi_make_callback(env, c->async, global, fn, 2, args, &result) != napi_ok) report_exception(env);
  napi_close_handle_scope(env, scope);
  napi_delete_reference(env, c->on_exit);
  napi_async_destroy(env, c->async);
  uv_close((uv_handle_t *)h, free_child);
}

// kill(signal) on the returned object: through the pidfd, so a pid reused after the exit is never hit
static napi_value kill_child(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  void *data;
  napi_get_cb_info(env, info, &argc, argv, NULL, &data);
  kill_cell_t *cell = data;
  int sig = SIGKILL;
  if (argc >= 1) napi_get_value_int32(env, argv[0], &sig);
  napi_value out;
  napi_get_boolean(env, cell->pidfd >= 0 && syscall(SYS_pidfd_send_signal, cell->pidfd, sig, NULL, 0) == 0, &out);
  return out;
}

/** a spawn on its way through the thread pool */
typedef struct {
  napi_async_work work;
  napi_ref on_started, on_exit;
  char **args; // NULL-terminated; args[0] is also the file looked up in PATH
  int err;     // errno of the step that failed, 0 when started
  const char *failed; // that step
  int out;     // read end of the output pipe
  int pidfd;
} start_t;

static void free_args(char **args) {
  for (char **a = args; *a; a++) free(*a);
  free(args);
}

// On a thread-pool thread: posix_spawn suspends its calling thread until the child has exec'd
// (CLONE_VFORK), and on a loaded machine the child may wait for a CPU first; the main thread goes on.
static void start_work(napi_env env, void *data) {
  (void)env;
  start_t *st = data;
  int fds[2] = {-1, -1};
  // close-on-exec: the child keeps only the copies dup2 makes on its stdout and stderr
  if (pipe2(fds, O_CLOEXEC) < 0) {
    st->err = errno;
    st->failed = "pipe2";
    return;
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
  // Node blocks some signals and ignores others: the program starts with none blocked, all default
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  pid_t pid;
  int err = posix_spawnp(&pid, st->args[0], &fa, &attr, st->args, environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  close(fds[1]);
  if (err) {
    close(fds[0]);
    st->err = err;
    st->failed = "posix_spawnp";
    return;
  }
  st->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
  if (st->pidfd < 0) {
    // cannot watch it: do not leave it running unwatched, nor a zombie
    st->err = errno;
    st->failed = "pidfd_open";
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    close(fds[0]);
    return;
  }
  st->out = fds[0];
}

static napi_value errno_error(napi_env env, int err, const char *syscall) {
  napi_value msg, code, error, sc;
  const char *name = strerrorname_np(err);
  napi_create_string_utf8(env, strerror(err), NAPI_AUTO_LENGTH, &msg);
  napi_create_string_utf8(env, name ? name : "EIO", NAPI_AUTO_LENGTH, &code);
  napi_create_error(env, code, msg, &error);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &sc);
  napi_set_named_property(env, error, "syscall", sc);
  return error;
}

// Back on the main thread: watch the pidfd, hand the output and kill() to JS (or the error).
static void start_done(napi_env env, napi_status status, void *data) {
  (void)status;
  start_t *st = data;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  napi_value global, fn, args[2], result;
  napi_get_global(env, &global);
  napi_get_reference_value(env, st->on_started, &fn);
  if (st->err) {
    args[0] = errno_error(env, st->err, st->failed);
    napi_get_undefined(env, &args[1]);
    napi_delete_reference(env, st->on_exit);
  } else {
    uv_loop_t *loop;
    napi_get_uv_event_loop(env, &loop);
    child_t *c = calloc(1, sizeof *c);
    c->env = env;
    c->on_exit = st->on_exit;
    c->cell = malloc(sizeof *c->cell);
    c->cell->pidfd = st->pidfd;
    c->cell->refs = 2;
    c->poll.data = c;
    napi_value name;
    napi_create_string_utf8(env, "plexus.spawn", NAPI_AUTO_LENGTH, &name);
    napi_async_init(env, NULL, name, &c->async);
    uv_poll_init(loop, &c->poll, st->pidfd);
    uv_poll_start(&c->poll, UV_READABLE, on_exited);
    napi_value v, killer;
    napi_get_null(env, &args[0]);
    napi_create_object(env, &args[1]);
    napi_create_int32(env, st->out, &v);
    napi_set_named_property(env, args[1], "fd", v);
    napi_create_function(env, "kill", NAPI_AUTO_LENGTH, kill_child, c->cell, &killer);
    napi_set_named_property(env, args[1], "kill", killer);
    napi_add_finalizer(env, args[1], c->cell, finalize_cell, NULL, NULL);
  }
  if (napi_call_function(env, global, fn, 2, args, &result) != napi_ok) report_exception(env);
  napi_close_handle_scope(env, scope);
  napi_delete_reference(env, st->on_started);
  napi_delete_async_work(env, st->work);
  free_args(st->args);
  free(st);
}

// spawn(file, args, onStarted, onExit): see the top of this file
static napi_value spawn_child(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  uint32_t n = 0;
  if (argc < 4 || napi_get_array_length(env, argv[1], &n) != napi_ok) {
    napi_throw_type_error(env, NULL, "spawn(file, args, onStarted, onExit)");
    return NULL;
  }
  char **args = calloc(n + 2, sizeof(char *));
  for (uint32_t i = 0; i <= n; i++) {
    napi_value el = argv[0];
    size_t size;
    if (i > 0) napi_get_element(env, argv[1], i - 1, &el);
    if (napi_get_value_string_utf8(env, el, NULL, 0, &size) != napi_ok) {
      free_args(args);
      napi_throw_type_error(env, NULL, "file and args must be strings");
      return NULL;
    }
    args[i] = malloc(size + 1);
    napi_get_value_string_utf8(env, el, args[i], size + 1, &size);
  }
  start_t *st = calloc(1, sizeof *st);
  st->args = args;
  st->out = st->pidfd = -1;
  napi_create_reference(env, argv[2], 1, &st->on_started);
  napi_create_reference(env, argv[3], 1, &st->on_exit);
  napi_value name;
  napi_create_string_utf8(env, "plexus.spawn.start", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, NULL, name, start_work, start_done, st, &st->work);
  napi_queue_async_work(env, st->work);
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor fns[] = {{"spawn", NULL, spawn_child, NULL, NULL, NULL, napi_default, NULL}};
  napi_define_properties(env, exports, sizeof fns / sizeof fns[0], fns);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
