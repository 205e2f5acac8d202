// nfqdelay: the NAT lab's link delay for kernels without sch_netem. Reads packets from one
// NFQUEUE (fed by an iptables `-j NFQUEUE --queue-num N` rule in the same network namespace:
// NFQUEUE is per namespace) and issues each packet's ACCEPT verdict `delay` ms after it arrived,
// plus a uniform random jitter in [-jitter, +jitter] ms. Release order is arrival order (a packet
// never leaves before the one queued ahead of it), like a FIFO link. At most `limit` packets wait;
// beyond that a packet is dropped at once, as a full link queue would. SIGTERM or SIGINT: every
// waiting packet is accepted immediately and the program exits 0.
//
//   nfqdelay QUEUE_NUM DELAY_MS [JITTER_MS [LIMIT]]
// Prints "ready" on stdout once bound to the queue; errors go to stderr with exit status 1.
// Build: gcc -O2 -o nfqdelay nfqdelay.c -lnetfilter_queue -lnfnetlink   (Debian: libnetfilter-queue-dev)
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <linux/netfilter.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct held {
  uint32_t id;
  int64_t due_ns;
};

static struct held *ring;
static size_t cap, head, count;
static int64_t delay_ns, jitter_ns, last_due_ns;
static unsigned long dropped;
static volatile sig_atomic_t stop;

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void on_signal(int sig) {
  (void)sig;
  stop = 1;
}

static void verdict(struct nfq_q_handle *qh, uint32_t id, uint32_t v) {
  if (nfq_set_verdict(qh, id, v, 0, NULL) < 0) perror("nfqdelay: nfq_set_verdict");
}

static int on_packet(struct nfq_q_handle *qh, struct nfgenmsg *msg, struct nfq_data *nfa, void *data) {
  (void)msg;
  (void)data;
  struct nfqnl_msg_packet_hdr *ph = nfq_get_msg_packet_hdr(nfa);
  if (!ph) return 0;
  uint32_t id = ntohl(ph->packet_id);
  if (count == cap) {
    dropped++;
    verdict(qh, id, NF_DROP);
    return 0;
  }
  int64_t due = now_ns() + delay_ns;
  if (jitter_ns > 0) due += (int64_t)(drand48() * (double)(2 * jitter_ns)) - jitter_ns;
  if (due < last_due_ns) due = last_due_ns; // keep arrival order
  last_due_ns = due;
  ring[(head + count) % cap] = (struct held){id, due};
  count++;
  return 0;
}

static void release_due(struct nfq_q_handle *qh, int all) {
  int64_t t = now_ns();
  while (count > 0 && (all || ring[head].due_ns <= t)) {
    verdict(qh, ring[head].id, NF_ACCEPT);
    head = (head + 1) % cap;
    count--;
  }
}

static long arg(const char *s, const char *what, long min) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || *end || v < min) {
    fprintf(stderr, "nfqdelay: bad %s \"%s\"\n", what, s);
    exit(1);
  }
  return v;
}

int main(int argc, char **argv) {
  if (argc < 3 || argc > 5) {
    fprintf(stderr, "usage: nfqdelay QUEUE_NUM DELAY_MS [JITTER_MS [LIMIT]]\n");
    return 1;
  }
  long qnum = arg(argv[1], "queue number", 0);
  delay_ns = arg(argv[2], "delay", 0) * 1000000L;
  jitter_ns = argc > 3 ? arg(argv[3], "jitter", 0) * 1000000L : 0;
  cap = argc > 4 ? (size_t)arg(argv[4], "limit", 1) : 10000;
  if (qnum > 65535) {
    fprintf(stderr, "nfqdelay: queue number %ld above 65535\n", qnum);
    return 1;
  }
  ring = calloc(cap, sizeof *ring);
  if (!ring) return perror("nfqdelay: calloc"), 1;
  srand48((long)now_ns() ^ getpid());

  // Signals are blocked except while waiting in ppoll, so none is lost between checks of `stop`.
  sigset_t block, waitmask;
  sigemptyset(&block);
  sigaddset(&block, SIGTERM);
  sigaddset(&block, SIGINT);
  sigprocmask(SIG_BLOCK, &block, &waitmask);
  struct sigaction sa = {0};
  sa.sa_handler = on_signal;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);

  struct nfq_handle *h = nfq_open();
  if (!h) return perror("nfqdelay: nfq_open"), 1;
  struct nfq_q_handle *qh = nfq_create_queue(h, (uint16_t)qnum, on_packet, NULL);
  if (!qh) return fprintf(stderr, "nfqdelay: cannot bind queue %ld: %s\n", qnum, strerror(errno)), 1;
  // Metadata only: the verdict needs the packet id, not its bytes.
  if (nfq_set_mode(qh, NFQNL_COPY_META, 0) < 0) return perror("nfqdelay: nfq_set_mode"), 1;
  // The kernel holds the packets meanwhile; let it hold a little more than we will.
  nfq_set_queue_maxlen(qh, (uint32_t)(cap + 1024));
  nfq_set_queue_flags(qh, NFQA_CFG_F_GSO, NFQA_CFG_F_GSO);
  nfnl_rcvbufsiz(nfq_nfnlh(h), 4 * 1024 * 1024);
  int fd = nfq_fd(h);
  printf("ready\n");
  fflush(stdout);

  char buf[65536];
  while (!stop) {
    struct timespec timeout, *tp = NULL;
    if (count > 0) {
      int64_t wait = ring[head].due_ns - now_ns();
      if (wait < 0) wait = 0;
      timeout.tv_sec = wait / 1000000000;
      timeout.tv_nsec = wait % 1000000000;
      tp = &timeout;
    }
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    int r = ppoll(&pfd, 1, tp, &waitmask);
    if (r < 0 && errno != EINTR) return perror("nfqdelay: ppoll"), 1;
    if (r > 0 && (pfd.revents & POLLIN)) {
      // Drain what is there without blocking, then hand out what is due.
      for (;;) {
        ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n < 0) {
          if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) break;
          if (errno == ENOBUFS) {
            dropped++; // the kernel overran our socket buffer: those packets are lost
            continue;
          }
          return perror("nfqdelay: recv"), 1;
        }
        nfq_handle_packet(h, buf, (int)n);
      }
    }
    release_due(qh, 0);
  }
  release_due(qh, 1);
  nfq_destroy_queue(qh);
  nfq_close(h);
  if (dropped) fprintf(stderr, "nfqdelay: %lu packets dropped (queue full)\n", dropped);
  return 0;
}
