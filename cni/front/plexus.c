// The native front end of the `plexus` CNI plugin: what runtimes exec for
// every container start. It forwards the invocation whole (the CNI_*
// environment, stdin as it came, the container's namespace held open) to
// plexusd's POST /v1/cni/invoke, which runs the plugin's own code on it
// (cni/lib/invoke.ts), and prints what the agent answers. A Node process costs
// every container start about 100 ms of CPU before it reads a byte; this
// costs about one.
//
// It decides nothing about CNI itself. Whenever it cannot forward (no agent,
// an agent without the route, stdin it does not read, a namespace it cannot
// open, an answer it does not understand) it executes the Node plugin beside
// it (`plexus-node`) with the same environment and stdin, which does the whole
// job alone, errors and DEL without an agent included.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#define DEFAULT_SOCKET "/run/plexus/plexusd.sock"
// the agent's limit for stdin (cni-invoke.ts): a bigger config goes to the Node plugin
#define MAX_STDIN (1 << 20)
#define MAX_ANSWER (4 << 20)
// longer than the plugin's own 30 s deadline, which the agent applies to the work itself
#define ANSWER_TIMEOUT_S 60

extern char **environ;

struct buf {
  char *p;
  size_t len, cap;
};

static int put(struct buf *b, const void *data, size_t n) {
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (b->len + n + 1 > cap) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) return -1;
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->len, data, n);
  b->len += n;
  b->p[b->len] = 0;
  return 0;
}

static int puts_(struct buf *b, const char *s) { return put(b, s, strlen(s)); }

static int putf(struct buf *b, const char *fmt, ...) {
  char tmp[256];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  return n < 0 || (size_t)n >= sizeof tmp ? -1 : put(b, tmp, (size_t)n);
}

/** A JSON string: quotes, backslashes and control bytes escaped; other bytes as they are (the agent reads UTF-8). */
static int put_json_string(struct buf *b, const char *s, size_t n) {
  if (puts_(b, "\"")) return -1;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    int r = c == '"' ? puts_(b, "\\\"")
            : c == '\\' ? puts_(b, "\\\\")
            : c < 0x20  ? putf(b, "\\u%04x", c)
                        : put(b, &s[i], 1);
    if (r) return -1;
  }
  return puts_(b, "\"");
}

/* ---- the one field read here: the top-level "socket" of the network config ---- */

struct scan {
  const char *p, *end;
};

static void ws(struct scan *s) {
  while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r')) s->p++;
}

/** A JSON string at s->p, decoded into out (NULL: skipped). Escapes beyond ASCII are left to the Node plugin (-1). */
static int string(struct scan *s, struct buf *out) {
  if (s->p >= s->end || *s->p != '"') return -1;
  for (s->p++; s->p < s->end; s->p++) {
    char c = *s->p;
    if (c == '"') {
      s->p++;
      return 0;
    }
    if ((unsigned char)c < 0x20) return -1;
    if (c == '\\') {
      if (++s->p >= s->end) return -1;
      const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
      const char *k = strchr(from, *s->p);
      if (*s->p == 'u') {
        if (s->end - s->p < 5) return -1;
        char hex[5] = {s->p[1], s->p[2], s->p[3], s->p[4], 0};
        char *e;
        long v = strtol(hex, &e, 16);
        if (*e || v <= 0 || v >= 0x80) return -1;
        c = (char)v;
        s->p += 4;
      } else if (k && *s->p) {
        c = to[k - from];
      } else {
        return -1;
      }
    }
    if (out && put(out, &c, 1)) return -1;
  }
  return -1;
}

/** Skips one JSON value of any kind (nested ones by depth, strings with their escapes). */
static int skip_value(struct scan *s) {
  if (s->p >= s->end) return -1;
  if (*s->p == '"') return string(s, NULL);
  if (*s->p == '{' || *s->p == '[') {
    int depth = 0;
    while (s->p < s->end) {
      char c = *s->p;
      if (c == '"') {
        if (string(s, NULL)) return -1;
        continue;
      }
      if (c == '{' || c == '[') depth++;
      if (c == '}' || c == ']') depth--;
      s->p++;
      if (depth == 0) return 0;
    }
    return -1;
  }
  const char *start = s->p;
  while (s->p < s->end && !strchr(",}] \t\r\n", *s->p)) s->p++;
  return s->p > start ? 0 : -1;
}

/**
 * The socket the config names, as JSON.parse would read it (the last of
 * repeated keys); the default when it names none. -1: not a JSON object, or a
 * "socket" that is not a plain absolute path: the Node plugin reports it.
 */
static int config_socket(const char *text, size_t n, struct buf *out) {
  struct scan s = {text, text + n};
  int found = 0;
  ws(&s);
  if (s.p >= s.end || *s.p++ != '{') return -1;
  ws(&s);
  for (int empty = s.p < s.end && *s.p == '}'; !empty;) {
    ws(&s);
    struct buf key = {0};
    int bad = string(&s, &key);
    int is_socket = !bad && key.p && strcmp(key.p, "socket") == 0;
    free(key.p);
    if (bad) return -1;
    ws(&s);
    if (s.p >= s.end || *s.p++ != ':') return -1;
    ws(&s);
    if (is_socket) {
      out->len = 0;
      if (string(&s, out) || !out->p || out->p[0] != '/' || out->len >= sizeof(((struct sockaddr_un *)0)->sun_path))
        return -1;
      found = 1;
    } else if (skip_value(&s)) {
      return -1;
    }
    ws(&s);
    if (s.p < s.end && *s.p == ',') {
      s.p++;
      continue;
    }
    if (s.p < s.end && *s.p == '}') break;
    return -1;
  }
  return found ? 0 : puts_(out, DEFAULT_SOCKET);
}

/* ---- the Node plugin, when forwarding is not possible ---- */

static void run_node_plugin(const char *in, size_t n) {
  char self[PATH_MAX], plugin[PATH_MAX + 16];
  ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
  if (len > 0) {
    self[len] = 0;
    char *slash = strrchr(self, '/');
    if (slash) *slash = 0;
    snprintf(plugin, sizeof plugin, "%s/plexus-node", self);
    // stdin was read here: the plugin reads the same bytes from a memory file in its place
    int fd = memfd_create("plexus-stdin", 0);
    if (fd >= 0 && (n == 0 || write(fd, in, n) == (ssize_t)n) && lseek(fd, 0, SEEK_SET) == 0 && dup2(fd, 0) == 0) {
      char *argv[] = {plugin, NULL};
      execve(plugin, argv, environ);
    }
  }
  // nothing to hand over to: a plugin error in the CNI form, as the runtime expects one
  printf("{\"cniVersion\":\"1.1.0\",\"code\":999,\"msg\":\"plexus: cannot run %s: %s\"}\n", len > 0 ? plugin : "the Node plugin",
         strerror(errno));
  exit(1);
}

/* ---- the exchange with the agent ---- */

static int read_all(int fd, struct buf *b, size_t max) {
  char chunk[65536];
  for (;;) {
    ssize_t r = read(fd, chunk, sizeof chunk);
    if (r == 0) return 0;
    if (r < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (b->len + (size_t)r > max || put(b, chunk, (size_t)r)) return -1;
  }
}

static int write_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/** The value of one response header (names compared without case), or NULL. */
static const char *header(const char *head, const char *name, char *out, size_t outlen) {
  size_t nl = strlen(name);
  for (const char *line = strstr(head, "\r\n"); line && line[2]; line = strstr(line + 2, "\r\n")) {
    const char *h = line + 2;
    if (strncasecmp(h, name, nl) == 0 && h[nl] == ':') {
      h += nl + 1;
      while (*h == ' ') h++;
      size_t vl = strcspn(h, "\r");
      if (vl >= outlen) return NULL;
      memcpy(out, h, vl);
      out[vl] = 0;
      return out;
    }
  }
  return NULL;
}

static long number(const char *s, long max) {
  char *e;
  if (!s || !*s) return -1;
  long v = strtol(s, &e, 10);
  return *e || v < 0 || v > max ? -1 : v;
}

int main(void) {
  struct buf in = {0}, path = {0}, body = {0}, req = {0}, res = {0};
  if (read_all(0, &in, MAX_STDIN)) run_node_plugin(in.p, in.len);
  const char *command = getenv("CNI_COMMAND");
  const char *netns = getenv("CNI_NETNS");
  size_t blank = strspn(in.p ? in.p : "", " \t\r\n");
  if (blank == in.len ? puts_(&path, DEFAULT_SOCKET) : config_socket(in.p, in.len, &path))
    run_node_plugin(in.p, in.len);

  // ADD and CHECK: the agent enters the namespace through this process's descriptor (NetnsHandle)
  long fd = -1;
  struct stat st;
  if (command && (!strcmp(command, "ADD") || !strcmp(command, "CHECK"))) {
    fd = netns && *netns ? open(netns, O_RDONLY) : -1;
    if (fd < 0 || fstat((int)fd, &st)) run_node_plugin(in.p, in.len);
  }

  int bad = puts_(&body, "{\"env\":{");
  int first = 1;
  for (char **e = environ; *e; e++) {
    const char *eq = strchr(*e, '=');
    // the names the agent takes (^CNI_[A-Z_]{1,32}$); others are no CNI variable
    if (strncmp(*e, "CNI_", 4) || !eq || eq - *e < 5 || eq - *e > 36 || strspn(*e + 4, "ABCDEFGHIJKLMNOPQRSTUVWXYZ_") != (size_t)(eq - *e - 4))
      continue;
    bad |= puts_(&body, first ? "" : ",") | put_json_string(&body, *e, (size_t)(eq - *e)) | puts_(&body, ":") |
           put_json_string(&body, eq + 1, strlen(eq + 1));
    first = 0;
  }
  bad |= puts_(&body, "},\"stdin\":") | put_json_string(&body, in.p ? in.p : "", in.len);
  if (fd >= 0)
    bad |= putf(&body, ",\"netnsHandle\":{\"pid\":%ld,\"fd\":%ld,\"ino\":%llu}", (long)getpid(), fd,
                (unsigned long long)st.st_ino);
  bad |= puts_(&body, "}");
  bad |= putf(&req,
              "POST /v1/cni/invoke HTTP/1.1\r\nhost: plexusd\r\nconnection: close\r\n"
              "content-type: application/json\r\ncontent-length: %zu\r\n\r\n",
              body.len) |
         put(&req, body.p, body.len);
  if (bad) run_node_plugin(in.p, in.len);

  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  memcpy(addr.sun_path, path.p, path.len);
  struct timeval deadline = {.tv_sec = ANSWER_TIMEOUT_S};
  int conn = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  // write, not shutdown: the agent (node:http) drops a request whose client half-closes before it answers
  if (conn < 0 || setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &deadline, sizeof deadline) ||
      connect(conn, (struct sockaddr *)&addr, sizeof addr) || write_all(conn, req.p, req.len) ||
      read_all(conn, &res, MAX_ANSWER))
    run_node_plugin(in.p, in.len);
  close(conn);

  // HTTP/1.1 200, the exit status and the stderr length in headers, stderr then stdout as the body
  char *end = res.p ? strstr(res.p, "\r\n\r\n") : NULL;
  if (!end || strncmp(res.p, "HTTP/1.1 200 ", 13)) run_node_plugin(in.p, in.len);
  *end = 0;
  char v[32];
  const char *payload = end + 4;
  size_t got = res.len - (size_t)(payload - res.p);
  long exit_code = number(header(res.p, "plexus-cni-exit", v, sizeof v), 1);
  long errlen = number(header(res.p, "plexus-cni-stderr", v, sizeof v), MAX_ANSWER);
  long length = number(header(res.p, "content-length", v, sizeof v), MAX_ANSWER);
  if (exit_code < 0 || errlen < 0 || length < errlen || (size_t)length != got) run_node_plugin(in.p, in.len);
  if (write_all(2, payload, (size_t)errlen) || write_all(1, payload + errlen, (size_t)(length - errlen))) return 1;
  return (int)exit_code;
}
