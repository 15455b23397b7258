// A UDP socket that moves datagrams in batches: recvmmsg into preallocated
// slots, one JS call per batch, one sendmmsg for the replies. The DNS logic
// stays in TypeScript; see README.md next to this file for why this exists.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <node_api.h>
#include "report.h"
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

// Slots per recvmmsg batch, bytes per slot (input and output alike). A DNS query
// over UDP is a few hundred bytes; a bigger datagram is cut to the slot and
// flagged, and the JS side treats it as malformed.
#define SLOTS 64
#define SLOT_SIZE 4096
// recvmmsg rounds per readable event: one busy socket must not starve the loop
#define MAX_ROUNDS 8
// replies waiting for the socket to become writable; beyond this they are dropped
#define QUEUE_MAX 4096
// Int32 fields per slot in `meta`
#define META_LEN 0   // bytes received (at most SLOT_SIZE)
#define META_TRUNC 1 // 1 when the datagram was larger than the slot
#define META_OUT 2   // set by JS: reply length in the output slot, 0 for none
// the sender's IPv4 address as a host-order integer (read back as unsigned), 0 for an IPv6 sender:
// the DNS server scopes its answers by the asker's networks, and this costs no object per datagram
#define META_PEER4 3
#define META_STRIDE 4
#define SOCK_BUFFER (4 * 1024 * 1024)

typedef union {
  struct sockaddr sa;
  struct sockaddr_in in4;
  struct sockaddr_in6 in6;
} peer_t;

typedef struct {
  peer_t peer;
  socklen_t peerlen;
  size_t len;
  unsigned char *data;
} queued_t;

typedef struct {
  napi_env env;
  uv_poll_t poll;
  int fd;
  bool closing;
  bool closed;
  bool writable_wanted;
  bool teardown; // the environment is going away: no more JS
  int port;
  napi_ref self;       // strong while open: the loop holds the socket
  napi_ref on_batch;   // JS function(n)
  napi_ref on_closed;  // JS function() for close()
  napi_async_context async;
  napi_async_cleanup_hook_handle cleanup;
  unsigned char *input;  // SLOTS x SLOT_SIZE, shared with JS (the socket's `input` Buffer)
  unsigned char *output; // same shape, JS writes replies here (`output`)
  int32_t *meta;         // SLOTS x META_STRIDE (`meta`)
  peer_t peers[SLOTS];
  struct mmsghdr rmsgs[SLOTS];
  struct iovec riov[SLOTS];
  struct mmsghdr smsgs[SLOTS];
  struct iovec siov[SLOTS];
  queued_t queue[QUEUE_MAX];
  size_t qhead, qlen;
  double received, sent, dropped, errors, batches;
} udp_t;

static const char *CODE_FALLBACK = "ERR_UDP_SYSCALL";

static napi_value throw_errno(napi_env env, const char *syscall, const char *what, int err) {
  napi_value msg, code, error, errnum, sc;
  const char *name = uv_err_name(-err);
  if (!name || strncmp(name, "Unknown", 7) == 0) name = CODE_FALLBACK;
  char text[256];
  snprintf(text, sizeof text, "%s %s%s%s: %s", syscall, name, what ? " " : "", what ? what : "", strerror(err));
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &msg);
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code);
  napi_create_error(env, code, msg, &error);
  napi_create_int32(env, err, &errnum);
  napi_set_named_property(env, error, "errno", errnum);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &sc);
  napi_set_named_property(env, error, "syscall", sc);
  napi_throw(env, error);
  return NULL;
}

static napi_value throw_type(napi_env env, const char *text) {
  napi_throw_type_error(env, NULL, text);
  return NULL;
}

static void queue_free_all(udp_t *u) {
  for (size_t i = 0; i < u->qlen; i++) free(u->queue[(u->qhead + i) % QUEUE_MAX].data);
  u->qhead = u->qlen = 0;
}

static void on_poll(uv_poll_t *h, int status, int events);

static void watch(udp_t *u) {
  if (u->closing) return;
  int events = UV_READABLE | (u->qlen ? UV_WRITABLE : 0);
  uv_poll_start(&u->poll, events, on_poll);
  u->writable_wanted = u->qlen > 0;
}

/** Copies one reply into the queue (the socket is full); counts a drop when the queue is full too. */
static void enqueue(udp_t *u, const peer_t *peer, socklen_t peerlen, const void *data, size_t len) {
  if (u->qlen >= QUEUE_MAX) {
    u->dropped++;
    return;
  }
  unsigned char *copy = malloc(len ? len : 1);
  if (!copy) {
    u->dropped++;
    return;
  }
  memcpy(copy, data, len);
  queued_t *q = &u->queue[(u->qhead + u->qlen) % QUEUE_MAX];
  q->peer = *peer;
  q->peerlen = peerlen;
  q->len = len;
  q->data = copy;
  u->qlen++;
}

/**
 * Sends msgs[0..n) with as few sendmmsg calls as it takes. A message the kernel
 * refuses (no route, bad address) is counted and skipped; on EAGAIN the rest is
 * queued for when the socket is writable again. Returns how many were queued.
 */
static size_t send_batch(udp_t *u, struct mmsghdr *msgs, unsigned n) {
  unsigned i = 0;
  while (i < n) {
    int r = sendmmsg(u->fd, msgs + i, n - i, MSG_DONTWAIT);
    if (r > 0) {
      u->sent += r;
      i += r;
      continue;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) break;
    u->errors++;
    i++;
  }
  size_t queued = n - i;
  for (; i < n; i++)
    enqueue(u, msgs[i].msg_hdr.msg_name, msgs[i].msg_hdr.msg_namelen, msgs[i].msg_hdr.msg_iov->iov_base,
            msgs[i].msg_hdr.msg_iov->iov_len);
  return queued;
}

/** Sends queued replies, SLOTS at a time, until the queue is empty or the socket is full again. */
static void flush_queue(udp_t *u) {
  while (u->qlen) {
    unsigned n = 0;
    for (; n < SLOTS && n < u->qlen; n++) {
      queued_t *q = &u->queue[(u->qhead + n) % QUEUE_MAX];
      u->siov[n].iov_base = q->data;
      u->siov[n].iov_len = q->len;
      memset(&u->smsgs[n].msg_hdr, 0, sizeof u->smsgs[n].msg_hdr);
      u->smsgs[n].msg_hdr.msg_name = &q->peer;
      u->smsgs[n].msg_hdr.msg_namelen = q->peerlen;
      u->smsgs[n].msg_hdr.msg_iov = &u->siov[n];
      u->smsgs[n].msg_hdr.msg_iovlen = 1;
    }
    unsigned done = 0;
    while (done < n) {
      int r = sendmmsg(u->fd, u->smsgs + done, n - done, MSG_DONTWAIT);
      if (r > 0) {
        u->sent += r;
        done += r;
      } else if (errno == EINTR) {
        continue;
      } else if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) {
        break;
      } else {
        u->errors++;
        done++;
      }
    }
    for (unsigned k = 0; k < done; k++) free(u->queue[(u->qhead + k) % QUEUE_MAX].data);
    u->qhead = (u->qhead + done) % QUEUE_MAX;
    u->qlen -= done;
    if (done < n) return;
  }
}

/** After the JS call: sends the replies it left in the output slots. */
static void send_replies(udp_t *u, int n) {
  unsigned k = 0;
  for (int i = 0; i < n; i++) {
    int32_t len = u->meta[i * META_STRIDE + META_OUT];
    if (len <= 0 || len > SLOT_SIZE) continue;
    u->siov[k].iov_base = u->output + (size_t)i * SLOT_SIZE;
    u->siov[k].iov_len = (size_t)len;
    memset(&u->smsgs[k].msg_hdr, 0, sizeof u->smsgs[k].msg_hdr);
    u->smsgs[k].msg_hdr.msg_name = &u->peers[i];
    u->smsgs[k].msg_hdr.msg_namelen = u->rmsgs[i].msg_hdr.msg_namelen;
    u->smsgs[k].msg_hdr.msg_iov = &u->siov[k];
    u->smsgs[k].msg_hdr.msg_iovlen = 1;
    k++;
  }
  if (!k) return;
  // replies already waiting go first: keep the order, and never overtake the queue
  if (u->qlen) {
    for (unsigned i = 0; i < k; i++)
      enqueue(u, u->smsgs[i].msg_hdr.msg_name, u->smsgs[i].msg_hdr.msg_namelen, u->siov[i].iov_base,
              u->siov[i].iov_len);
    return;
  }
  send_batch(u, u->smsgs, k);
}

/** One recvmmsg round; returns datagrams read, 0 when drained, -1 on error. */
static int receive(udp_t *u) {
  for (int i = 0; i < SLOTS; i++) {
    u->rmsgs[i].msg_hdr.msg_namelen = sizeof(peer_t);
    u->rmsgs[i].msg_hdr.msg_flags = 0;
    u->rmsgs[i].msg_len = 0;
  }
  for (;;) {
    int r = recvmmsg(u->fd, u->rmsgs, SLOTS, MSG_DONTWAIT, NULL);
    if (r >= 0) return r;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
    u->errors++;
    return -1;
  }
}

static void call_batch(udp_t *u, int n) {
  napi_env env = u->env;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  napi_value self, fn, arg, result;
  napi_get_reference_value(env, u->self, &self);
  napi_get_reference_value(env, u->on_batch, &fn);
  napi_create_int32(env, n, &arg);
  // make_callback, not call_function: promise reactions and nextTicks queued by
  // the batch run when it returns, as after any other I/O callback
  if (napi_make_callback(env, u->async, self, fn, 1, &arg, &result) != napi_ok) report_exception(env);
  napi_close_handle_scope(env, scope);
}

static void on_poll(uv_poll_t *h, int status, int events) {
  udp_t *u = h->data;
  if (status < 0) {
    // POLLERR: libuv has stopped the handle. Read (and so clear) the socket's pending
    // error, count it and keep serving: an unconnected UDP socket without IP_RECVERR
    // gets none from ICMP, so this is rare and must not end the listener
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(u->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    u->errors++;
    watch(u);
    return;
  }
  if ((events & UV_WRITABLE) && u->qlen) flush_queue(u);
  if (events & UV_READABLE) {
    for (int round = 0; round < MAX_ROUNDS && !u->closing; round++) {
      int n = receive(u);
      if (n <= 0) break;
      u->received += n;
      u->batches++;
      for (int i = 0; i < n; i++) {
        int32_t *m = u->meta + i * META_STRIDE;
        m[META_LEN] = (int32_t)u->rmsgs[i].msg_len;
        m[META_TRUNC] = (u->rmsgs[i].msg_hdr.msg_flags & MSG_TRUNC) ? 1 : 0;
        m[META_OUT] = 0;
        m[META_PEER4] = u->peers[i].sa.sa_family == AF_INET ? (int32_t)ntohl(u->peers[i].in4.sin_addr.s_addr) : 0;
      }
      call_batch(u, n);
      if (u->closing) break;
      send_replies(u, n);
      if (n < SLOTS) break; // drained: skip the recvmmsg that would say EAGAIN
    }
  }
  if (!u->closing && u->writable_wanted != (u->qlen > 0)) watch(u);
}

static void finish_close(uv_handle_t *h) {
  udp_t *u = h->data;
  napi_env env = u->env;
  close(u->fd);
  u->fd = -1;
  u->closed = true;
  queue_free_all(u);
  if (u->cleanup) {
    napi_remove_async_cleanup_hook(u->cleanup);
    u->cleanup = NULL;
  }
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  napi_value cb = NULL, self;
  if (u->on_closed) {
    napi_get_reference_value(env, u->on_closed, &cb);
    napi_delete_reference(env, u->on_closed);
    u->on_closed = NULL;
  }
  napi_get_reference_value(env, u->self, &self);
  if (cb && !u->teardown) {
    napi_value result;
    if (napi_make_callback(env, u->async, self, cb, 0, NULL, &result) != napi_ok) report_exception(env);
  }
  napi_close_handle_scope(env, scope);
  napi_async_destroy(env, u->async);
  // nothing in the loop refers to the socket any more: let it be collected
  napi_reference_unref(env, u->self, NULL);
}

static void start_close(udp_t *u) {
  if (u->closing) return;
  u->closing = true;
  uv_poll_stop(&u->poll);
  uv_close((uv_handle_t *)&u->poll, finish_close);
}

// the environment is going away (worker thread ended, process exit) with the socket open
static void cleanup_hook(napi_async_cleanup_hook_handle handle, void *arg) {
  (void)handle;
  udp_t *u = arg;
  u->teardown = true;
  start_close(u);
}

static void finalize(napi_env env, void *data, void *hint) {
  (void)hint;
  udp_t *u = data;
  if (u->on_batch) napi_delete_reference(env, u->on_batch);
  if (u->self) napi_delete_reference(env, u->self);
  free(u);
}

static udp_t *unwrap(napi_env env, napi_callback_info info, size_t *argc, napi_value *argv) {
  napi_value self;
  void *data = NULL;
  if (napi_get_cb_info(env, info, argc, argv, &self, NULL) != napi_ok) return NULL;
  if (napi_unwrap(env, self, &data) != napi_ok || !data) {
    throw_type(env, "not a UdpSocket");
    return NULL;
  }
  return data;
}

/** Parses an address + port into a sockaddr; returns its length or 0. */
static socklen_t make_addr(const char *host, int port, peer_t *out) {
  memset(out, 0, sizeof *out);
  if (inet_pton(AF_INET, host, &out->in4.sin_addr) == 1) {
    out->in4.sin_family = AF_INET;
    out->in4.sin_port = htons(port);
    return sizeof out->in4;
  }
  if (inet_pton(AF_INET6, host, &out->in6.sin6_addr) == 1) {
    out->in6.sin6_family = AF_INET6;
    out->in6.sin6_port = htons(port);
    return sizeof out->in6;
  }
  return 0;
}

static napi_value set_prop(napi_env env, napi_value obj, const char *name, napi_value v) {
  napi_property_descriptor d = {name, NULL, NULL, NULL, NULL, v, napi_enumerable, NULL};
  napi_define_properties(env, obj, 1, &d);
  return v;
}

// new UdpSocket(address, port, onBatch(n)): a bound, polled, non-blocking UDP socket
// in the calling thread's network namespace (created synchronously, here).
static napi_value construct(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], self;
  napi_get_cb_info(env, info, &argc, argv, &self, NULL);
  char host[INET6_ADDRSTRLEN + 1];
  size_t hostlen = 0;
  int32_t port;
  napi_valuetype fntype = napi_undefined;
  if (argc < 3 || napi_get_value_string_utf8(env, argv[0], host, sizeof host, &hostlen) != napi_ok ||
      napi_get_value_int32(env, argv[1], &port) != napi_ok || napi_typeof(env, argv[2], &fntype) != napi_ok ||
      fntype != napi_function)
    return throw_type(env, "new UdpSocket(address: string, port: number, onBatch: (n) => void)");
  peer_t addr;
  socklen_t addrlen = port >= 0 && port <= 65535 && hostlen < sizeof host - 1 ? make_addr(host, port, &addr) : 0;
  if (!addrlen) return throw_type(env, "UdpSocket: address must be an IPv4/IPv6 literal and port 0-65535");

  int fd = socket(addr.sa.sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, "socket", NULL, errno);
  // bursts (every container resolving at start-up) must queue in the kernel, not be
  // dropped; the kernel caps these at net.core.rmem_max/wmem_max
  int size = SOCK_BUFFER;
  char where[INET6_ADDRSTRLEN + 16];
  snprintf(where, sizeof where, addr.sa.sa_family == AF_INET6 ? "[%s]:%d" : "%s:%d", host, port);
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size) != 0 ||
      setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size) != 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, "setsockopt", where, err);
  }
  if (bind(fd, &addr.sa, addrlen) != 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, "bind", where, err);
  }
  peer_t bound;
  socklen_t boundlen = sizeof bound;
  if (getsockname(fd, &bound.sa, &boundlen) != 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, "getsockname", where, err);
  }

  udp_t *u = calloc(1, sizeof *u);
  if (!u) {
    close(fd);
    return throw_errno(env, "calloc", NULL, ENOMEM);
  }
  if (napi_wrap(env, self, u, finalize, NULL, NULL) != napi_ok) {
    free(u);
    close(fd);
    return NULL;
  }
  u->env = env;
  u->fd = fd;
  u->port = ntohs(bound.sa.sa_family == AF_INET6 ? bound.in6.sin6_port : bound.in4.sin_port);

  // the slots, shared with JS: no copy and no allocation per datagram. JS owns the
  // memory (properties of the socket object), so it lives as long as the socket does
  napi_value input, output, meta_ab, meta, v;
  void *data;
  napi_create_buffer(env, SLOTS * SLOT_SIZE, &data, &input);
  u->input = data;
  napi_create_buffer(env, SLOTS * SLOT_SIZE, &data, &output);
  u->output = data;
  napi_create_arraybuffer(env, SLOTS * META_STRIDE * sizeof(int32_t), &data, &meta_ab);
  memset(data, 0, SLOTS * META_STRIDE * sizeof(int32_t));
  u->meta = data;
  napi_create_typedarray(env, napi_int32_array, SLOTS * META_STRIDE, meta_ab, 0, &meta);
  set_prop(env, self, "input", input);
  set_prop(env, self, "output", output);
  set_prop(env, self, "meta", meta);
  napi_create_int32(env, u->port, &v);
  set_prop(env, self, "port", v);
  for (int i = 0; i < SLOTS; i++) {
    u->riov[i].iov_base = u->input + (size_t)i * SLOT_SIZE;
    u->riov[i].iov_len = SLOT_SIZE;
    u->rmsgs[i].msg_hdr.msg_name = &u->peers[i];
    u->rmsgs[i].msg_hdr.msg_iov = &u->riov[i];
    u->rmsgs[i].msg_hdr.msg_iovlen = 1;
  }

  // strong while open: the loop, not JS, decides when the socket may go
  napi_create_reference(env, self, 1, &u->self);
  napi_create_reference(env, argv[2], 1, &u->on_batch);
  napi_value name;
  napi_create_string_utf8(env, "PlexusUdpSocket", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, self, name, &u->async);
  napi_add_async_cleanup_hook(env, cleanup_hook, u, &u->cleanup);
  uv_loop_t *loop;
  napi_get_uv_event_loop(env, &loop);
  uv_poll_init_socket(loop, &u->poll, fd);
  u->poll.data = u;
  watch(u);
  return self;
}

// peer(i): a copy of slot i's sender address, for a reply sent later with sendTo
static napi_value peer(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], out;
  udp_t *u = unwrap(env, info, &argc, argv);
  if (!u) return NULL;
  int32_t i;
  if (argc < 1 || napi_get_value_int32(env, argv[0], &i) != napi_ok || i < 0 || i >= SLOTS)
    return throw_type(env, "peer(slot) wants a slot index");
  void *data;
  socklen_t len = u->rmsgs[i].msg_hdr.msg_namelen;
  if (len > sizeof(peer_t)) len = sizeof(peer_t);
  napi_create_buffer_copy(env, len, &u->peers[i], &data, &out);
  return out;
}

// sendTo(buf, peer): one datagram outside a batch (a reply that was not ready in it);
// false when the socket is closed
static napi_value send_to(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], out;
  udp_t *u = unwrap(env, info, &argc, argv);
  if (!u) return NULL;
  void *data, *addr;
  size_t len, addrlen;
  if (argc < 2 || napi_get_buffer_info(env, argv[0], &data, &len) != napi_ok ||
      napi_get_buffer_info(env, argv[1], &addr, &addrlen) != napi_ok || addrlen > sizeof(peer_t) ||
      addrlen < sizeof(struct sockaddr_in))
    return throw_type(env, "sendTo(buf: Buffer, peer: Buffer from peer())");
  if (u->closing) {
    napi_get_boolean(env, false, &out);
    return out;
  }
  peer_t p;
  memcpy(&p, addr, addrlen);
  if (u->qlen) {
    enqueue(u, &p, (socklen_t)addrlen, data, len);
  } else {
    struct iovec iov = {data, len};
    struct mmsghdr m;
    memset(&m, 0, sizeof m);
    m.msg_hdr.msg_name = &p;
    m.msg_hdr.msg_namelen = (socklen_t)addrlen;
    m.msg_hdr.msg_iov = &iov;
    m.msg_hdr.msg_iovlen = 1;
    send_batch(u, &m, 1);
  }
  if (u->writable_wanted != (u->qlen > 0)) watch(u);
  napi_get_boolean(env, true, &out);
  return out;
}

static napi_value stats(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  udp_t *u = unwrap(env, info, &argc, NULL);
  if (!u) return NULL;
  napi_value out, v;
  napi_create_object(env, &out);
  const struct {
    const char *name;
    double value;
  } fields[] = {{"received", u->received}, {"sent", u->sent},       {"dropped", u->dropped},
                {"errors", u->errors},     {"batches", u->batches}, {"queued", (double)u->qlen}};
  for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
    napi_create_double(env, fields[i].value, &v);
    napi_set_named_property(env, out, fields[i].name, v);
  }
  return out;
}

// close(callback): stops reading, drops queued replies, closes the fd once libuv has
// let go of it, then calls back; a second close is a no-op (the JS wrapper memoizes)
static napi_value close_socket(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  udp_t *u = unwrap(env, info, &argc, argv);
  if (!u) return NULL;
  napi_valuetype t = napi_undefined;
  if (argc < 1 || napi_typeof(env, argv[0], &t) != napi_ok || t != napi_function)
    return throw_type(env, "close(callback)");
  if (u->closing) return NULL;
  napi_create_reference(env, argv[0], 1, &u->on_closed);
  start_close(u);
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor methods[] = {
      {"peer", NULL, peer, NULL, NULL, NULL, napi_default, NULL},
      {"sendTo", NULL, send_to, NULL, NULL, NULL, napi_default, NULL},
      {"stats", NULL, stats, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, close_socket, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_value cls, v;
  napi_define_class(env, "UdpSocket", NAPI_AUTO_LENGTH, construct, NULL, sizeof methods / sizeof methods[0], methods,
                    &cls);
  napi_set_named_property(env, exports, "UdpSocket", cls);
  const struct {
    const char *name;
    int value;
  } consts[] = {{"SLOTS", SLOTS},       {"SLOT_SIZE", SLOT_SIZE}, {"META_STRIDE", META_STRIDE},
                {"META_LEN", META_LEN}, {"META_TRUNC", META_TRUNC}, {"META_OUT", META_OUT},
                {"META_PEER4", META_PEER4}, {"QUEUE_MAX", QUEUE_MAX}};
  for (size_t i = 0; i < sizeof consts / sizeof consts[0]; i++) {
    napi_create_int32(env, consts[i].value, &v);
    napi_set_named_property(env, exports, consts[i].name, v);
  }
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
