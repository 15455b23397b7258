// Shared by the addons that call back into JS from libuv callbacks (udp.c, spawn.c).
#ifndef PLEXUS_REPORT_H
#define PLEXUS_REPORT_H
#include <node_api.h>

// A callback threw: hand the exception to Node's uncaught-exception path, as an
// exception thrown in any other I/O callback would be (it ends the process
// unless a handler takes it); the libuv callback itself goes on.
static inline void report_exception(napi_env env) {
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (!pending) return;
  napi_value err;
  napi_get_and_clear_last_exception(env, &err);
  napi_fatal_exception(env, err);
}

#endif
