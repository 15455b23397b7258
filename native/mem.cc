// The agent's two ways of giving memory back to the kernel: malloc_trim(3) for
// the C heap and V8's moderate memory-pressure signal for the JS heap. See
// README.md next to this file for why. C++ only for the second: V8's API
// (v8.h, from the running node's own headers) has no C or N-API form.
#include <malloc.h>
#include <node_api.h>
#include <v8.h>

// trim(): malloc_trim(0) on every arena; true when memory was given back
static napi_value trim(napi_env env, napi_callback_info) {
  napi_value out;
  napi_get_boolean(env, malloc_trim(0) == 1, &out);
  return out;
}

// reduce(): moderate memory pressure. V8 starts an incremental mark-compact
// that reduces its footprint (compacts, shrinks the young generation, frees
// empty pages) unless one is running; it is not the full stop-the-world
// collection that critical pressure or LowMemoryNotification() would be.
static napi_value reduce(napi_env env, napi_callback_info) {
  v8::Isolate* isolate = v8::Isolate::GetCurrent();
  if (isolate != nullptr) isolate->MemoryPressureNotification(v8::MemoryPressureLevel::kModerate);
  napi_value out;
  napi_get_boolean(env, isolate != nullptr, &out);
  return out;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor fns[] = {
      {"trim", nullptr, trim, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"reduce", nullptr, reduce, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  napi_define_properties(env, exports, sizeof fns / sizeof fns[0], fns);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
