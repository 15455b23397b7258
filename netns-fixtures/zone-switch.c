// zone-switch: the test bed's delay line between zones (netns-fixtures/cluster.ts, `up --zones`).
//
// This kernel has no netem, so the round trip between zones is made here: one TAP device per zone,
// each a port of that zone's underlay bridge, and this process between them as a learning Ethernet
// switch that holds every frame for half the round trip of its pair of zones before writing it out
// on the other zone's TAP. One switch in the middle of a star (never a TAP pair per two zones) keeps
// the underlay free of loops with any number of zones, and one L2 segment keeps every host address,
// ARP and the host-gw backend as they are without zones.
//
// usage: zone-switch --zone NAME [--zone NAME ...] [--rtt A-B=MS ...]
// Creates TAP devices zs-NAME (down, no master: the fixture attaches them), prints "ready" and
// switches until killed; the devices vanish with the process. A pair not given has no delay.
//
// Frames of one pair of zones leave in the order they came (one FIFO a pair and one delay a pair).
// A pair's queue holds QUEUE_FRAMES; beyond that frames are dropped, as a router's buffer would.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define MAX_ZONES 8
#define SLOT 2048         /* a 1500-byte MTU frame and its header fit; a longer one is dropped */
#define QUEUE_FRAMES 2048 /* 20 ms of ~1.2 Gbit/s in 1500-byte frames, per pair */
#define MACS 4096         /* learned addresses: open addressing, a power of two */
#define READ_BATCH 64     /* frames read from one TAP before the others get a turn */

struct frame {
  uint64_t due;
  uint16_t len;
  unsigned char data[SLOT];
};

struct queue {
  struct frame *frames; /* allocated when the pair first carries a frame */
  unsigned head, count;
};

struct mac_entry {
  unsigned char mac[6];
  signed char zone; /* -1: free */
};

static int zones;
static char names[MAX_ZONES][IFNAMSIZ];
static int fds[MAX_ZONES];
static uint64_t delay_ns[MAX_ZONES][MAX_ZONES];
static struct queue queues[MAX_ZONES][MAX_ZONES]; /* [from][to] */
static struct mac_entry macs[MACS];
static uint64_t dropped, dropped_reported_at;

static void die(const char *what) {
  fprintf(stderr, "zone-switch: %s: %s\n", what, strerror(errno));
  exit(1);
}

static void usage(const char *why) {
  fprintf(stderr, "zone-switch: %s\nusage: zone-switch --zone NAME [--zone NAME ...] [--rtt A-B=MS ...]\n", why);
  exit(2);
}

static uint64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static int zone_index(const char *name, size_t len) {
  for (int i = 0; i < zones; i++)
    if (strlen(names[i]) == len && memcmp(names[i], name, len) == 0) return i;
  return -1;
}

static unsigned mac_hash(const unsigned char *mac) {
  unsigned h = 2166136261u;
  for (int i = 0; i < 6; i++) h = (h ^ mac[i]) * 16777619u;
  return h & (MACS - 1);
}

/* the zone a source address was last seen in; a full table forgets the slot it lands on */
static void learn(const unsigned char *mac, int zone) {
  unsigned h = mac_hash(mac);
  for (unsigned i = 0; i < 16; i++) {
    struct mac_entry *e = &macs[(h + i) & (MACS - 1)];
    if (e->zone < 0 || memcmp(e->mac, mac, 6) == 0) {
      memcpy(e->mac, mac, 6);
      e->zone = (signed char)zone;
      return;
    }
  }
  memcpy(macs[h].mac, mac, 6);
  macs[h].zone = (signed char)zone;
}

static int lookup(const unsigned char *mac) {
  unsigned h = mac_hash(mac);
  for (unsigned i = 0; i < 16; i++) {
    struct mac_entry *e = &macs[(h + i) & (MACS - 1)];
    if (e->zone < 0) return -1;
    if (memcmp(e->mac, mac, 6) == 0) return e->zone;
  }
  return -1;
}

/* counted, and said on stderr at most once a second: a bench that sees loss can tell it is the bed's */
static void drop(uint64_t now) {
  dropped++;
  if (now - dropped_reported_at < 1000000000u) return;
  dropped_reported_at = now;
  fprintf(stderr, "zone-switch: %llu frames dropped so far (a queue full, or a frame over %d bytes)\n",
          (unsigned long long)dropped, SLOT);
}

static void enqueue(int from, int to, const unsigned char *data, size_t len, uint64_t now) {
  struct queue *q = &queues[from][to];
  if (!q->frames && !(q->frames = malloc(sizeof(struct frame) * QUEUE_FRAMES))) die("malloc");
  if (q->count == QUEUE_FRAMES) {
    drop(now);
    return;
  }
  struct frame *f = &q->frames[(q->head + q->count) % QUEUE_FRAMES];
  f->due = now + delay_ns[from][to];
  f->len = (uint16_t)len;
  memcpy(f->data, data, len);
  q->count++;
}

/* a frame read on a zone's TAP: to the zone its destination was learned in, or to every other zone */
static void forward(int from, const unsigned char *data, size_t len, uint64_t now) {
  if (len < 14) return;
  learn(data + 6, from);
  int to = (data[0] & 1) ? -1 : lookup(data);
  if (to == from) return; /* the zone's own bridge delivers it */
  for (int z = 0; z < zones; z++)
    if (z != from && (to < 0 || z == to)) enqueue(from, z, data, len, now);
}

/* writes every frame that is due; the earliest frame still held, or UINT64_MAX */
static uint64_t flush(uint64_t now) {
  uint64_t next = UINT64_MAX;
  for (int a = 0; a < zones; a++)
    for (int b = 0; b < zones; b++) {
      struct queue *q = &queues[a][b];
      while (q->count && q->frames[q->head].due <= now) {
        struct frame *f = &q->frames[q->head];
        if (write(fds[b], f->data, f->len) < 0 && errno != EAGAIN && errno != EIO) die("write");
        q->head = (q->head + 1) % QUEUE_FRAMES;
        q->count--;
      }
      if (q->count && q->frames[q->head].due < next) next = q->frames[q->head].due;
    }
  return next;
}

static int open_tap(const char *zone) {
  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) die("/dev/net/tun");
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
  snprintf(ifr.ifr_name, IFNAMSIZ, "zs-%s", zone);
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) die(ifr.ifr_name);
  return fd;
}

static void parse_rtt(const char *arg) {
  const char *dash = strchr(arg, '-'), *eq = strchr(arg, '=');
  if (!dash || !eq || eq < dash) usage("--rtt wants A-B=MS");
  int a = zone_index(arg, (size_t)(dash - arg)), b = zone_index(dash + 1, (size_t)(eq - dash - 1));
  if (a < 0 || b < 0 || a == b) usage("--rtt names two different zones given with --zone");
  char *end;
  double ms = strtod(eq + 1, &end);
  if (*end || !(ms >= 0 && ms <= 10000)) usage("--rtt wants milliseconds from 0 to 10000");
  delay_ns[a][b] = delay_ns[b][a] = (uint64_t)(ms * 1e6 / 2); /* each way half the round trip */
}

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--zone") == 0 && i + 1 < argc) {
      const char *z = argv[++i];
      size_t n = strlen(z);
      if (zones == MAX_ZONES) usage("at most 8 zones");
      if (n < 1 || n > 8 || strspn(z, "abcdefghijklmnopqrstuvwxyz0123456789") != n) usage("a zone is [a-z0-9]{1,8}");
      if (zone_index(z, n) >= 0) usage("a zone is given twice");
      memcpy(names[zones++], z, n + 1);
    } else if (strcmp(argv[i], "--rtt") == 0 && i + 1 < argc) {
      i++; /* after every --zone: parsed below */
    } else {
      usage("unknown argument");
    }
  }
  if (zones < 2) usage("at least two zones");
  for (int i = 1; i < argc; i++)
    if (strcmp(argv[i], "--rtt") == 0) parse_rtt(argv[++i]);
    else if (strcmp(argv[i], "--zone") == 0) i++;
  for (int i = 0; i < MACS; i++) macs[i].zone = -1;

  struct pollfd pfds[MAX_ZONES];
  for (int z = 0; z < zones; z++) {
    fds[z] = open_tap(names[z]);
    pfds[z] = (struct pollfd){ .fd = fds[z], .events = POLLIN };
  }
  printf("ready\n");
  fflush(stdout);

  static unsigned char buf[65536];
  for (;;) {
    uint64_t now = now_ns(), next = flush(now);
    struct timespec wait, *timeout = NULL;
    if (next != UINT64_MAX) {
      uint64_t d = next > now ? next - now : 0;
      wait = (struct timespec){ .tv_sec = (time_t)(d / 1000000000u), .tv_nsec = (long)(d % 1000000000u) };
      timeout = &wait;
    }
    if (ppoll(pfds, (nfds_t)zones, timeout, NULL) < 0 && errno != EINTR) die("ppoll");
    now = now_ns();
    for (int z = 0; z < zones; z++) {
      if (!(pfds[z].revents & POLLIN)) continue;
      for (int k = 0; k < READ_BATCH; k++) {
        ssize_t n = read(fds[z], buf, sizeof buf);
        if (n < 0) {
          if (errno == EAGAIN || errno == EINTR) break;
          die("read");
        }
        if ((size_t)n <= SLOT) forward(z, buf, (size_t)n, now);
        else drop(now);
      }
    }
  }
}
