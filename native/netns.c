// setns(2) for network namespaces (the other addon, udp.c, is the DNS server's batching socket).
// See README.md next to this file for why it exists and how it must be used.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <node_api.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static napi_value throw_errno(napi_env env, const char *syscall, int err) {
  napi_value msg, code, error, errnum;
  char text[128];
  snprintf(text, sizeof text, "%s: %s", syscall, strerror(err));
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &msg);
  napi_create_string_utf8(env, "ERR_NETNS_SYSCALL", NAPI_AUTO_LENGTH, &code);
  napi_create_error(env, code, msg, &error);
  napi_create_int32(env, err, &errnum);
  napi_set_named_property(env, error, "errno", errnum);
  napi_value sc;
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &sc);
  napi_set_named_property(env, error, "syscall", sc);
  napi_throw(env, error);
  return NULL;
}

static int int_arg(napi_env env, napi_callback_info info, int32_t *out) {
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1) return -1;
  return napi_get_value_int32(env, argv[0], out) == napi_ok ? 0 : -1;
}

// setnsNet(fd): move the calling (main JS) thread into the network namespace of fd.
static napi_value setns_net(napi_env env, napi_callback_info info) {
  int32_t fd;
  if (int_arg(env, info, &fd) != 0) {
    napi_throw_type_error(env, NULL, "setnsNet(fd) wants an integer fd");
    return NULL;
  }
  if (setns(fd, CLONE_NEWNET) != 0) return throw_errno(env, "setns", errno);
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "setnsNet", NAPI_AUTO_LENGTH, setns_net, NULL, &fn);
  napi_set_named_property(env, exports, "setnsNet", fn);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
