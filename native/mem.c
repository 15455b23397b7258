// malloc_trim(3) for the agent's periodic return of freed C heap to the kernel.
// See README.md next to this file for why.
#include <malloc.h>
#include <node_api.h>

// trim(): malloc_trim(0) on every arena; true when memory was given back
static napi_value trim(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value out;
  napi_get_boolean(env, malloc_trim(0) == 1, &out);
  return out;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor fns[] = {{"trim", NULL, trim, NULL, NULL, NULL, napi_default, NULL}};
  napi_define_properties(env, exports, sizeof fns / sizeof fns[0], fns);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
